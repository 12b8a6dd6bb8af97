"use strict";
// The web reviewer's page logic. Every piece of queue text is put in the page with
// textContent, never parsed as HTML: transcript text is untrusted.
(function () {
  const $ = (id) => document.getElementById(id);
  const KIND_LABEL = { category: "category", phase: "phase", mitigation: "" };
  const GROUPS = [["category", "Categories"], ["phase", "Lifecycle phases"], ["mitigation", "Mitigation"]];

  // One id per browser tab, kept across reloads: the server resumes this tab on its task.
  let tab = sessionStorage.getItem("qi-review-tab");
  if (!tab) {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    tab = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("qi-review-tab", tab);
  }

  let state = null; // the last state the server sent
  let selection = new Set(); // ticked option ids of the task on screen
  let showAll = false;
  let showDefs = false; // the catalog's definitions under each option (key d)
  let busy = false;

  function setStatus(text, kind) {
    const el = $("status");
    el.textContent = text || "";
    el.className = kind || "";
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function showTurn(id, turn, who) {
    const box = $(id);
    if (!turn || !turn.text) { box.hidden = true; return; }
    box.hidden = false;
    if (who !== undefined) box.querySelector(".who").textContent = who;
    box.querySelector(".text").textContent = turn.text;
  }

  function speakerLabel(prefix, turn) {
    const speaker = turn && turn.speaker ? turn.speaker : "?";
    return prefix + " (" + speaker + (turn && turn.turn !== undefined && turn.turn !== null ? ", turn " + turn.turn : "") + ")";
  }

  // Keys 1-9 and 0 tick options 1-10; the numbers are the terminal reviewer's numbers too.
  function keyOf(number) {
    return number <= 9 ? String(number) : number === 10 ? "0" : "";
  }

  function optionRow(opt) {
    const li = el("li", "option" + (selection.has(opt.id) ? " ticked" : ""));
    li.dataset.id = opt.id;
    li.dataset.number = String(opt.number);
    if (opt.definition) li.title = opt.definition;
    const label = el("label", "option-label");
    label.style.display = "contents";
    const num = el("span", "num");
    const key = keyOf(opt.number);
    num.appendChild(key ? el("kbd", null, key) : el("span", "muted", String(opt.number)));
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = selection.has(opt.id);
    box.tabIndex = -1;
    box.addEventListener("change", () => toggle(opt.id));
    const name = el("span", "name");
    name.appendChild(el("span", "label", opt.text));
    if (KIND_LABEL[opt.kind]) name.appendChild(el("span", "kind", KIND_LABEL[opt.kind]));
    if (state.task.predicted.includes(opt.id)) name.appendChild(el("span", "picked", "model's pick"));
    if (showDefs && opt.definition) name.appendChild(el("span", "definition", opt.definition));
    const score = el("span", "score");
    const track = el("span", "track");
    const fill = el("span", "fill");
    fill.style.width = opt.score === null ? "0" : Math.round(Math.max(0, Math.min(1, opt.score)) * 100) + "%";
    track.appendChild(fill);
    score.appendChild(track);
    score.appendChild(el("span", null, opt.score === null ? " -  " : opt.score.toFixed(2)));
    score.title = "model probability";
    label.append(num, box, name, score);
    li.appendChild(label);
    return li;
  }

  function likelyOptions() {
    return state.task.options.filter((o) => o.likely);
  }

  function renderOptions() {
    const task = state.task;
    const likely = likelyOptions();
    const list = $("likely");
    list.replaceChildren(...likely.map((o) => optionRow(o)));
    const extra = task.options.filter((o) => !o.likely && selection.has(o.id));
    if (extra.length) {
      list.appendChild(el("li", "muted", "also ticked: " + extra.map((o) => o.text).join(", ")));
    }
    const rest = task.options.length - likely.length;
    $("more").textContent = (showAll ? "Hide the other " + rest + " options" : "Show the other " + rest + " options") + "  [o]";
    $("more").setAttribute("aria-expanded", String(showAll));
    $("more").hidden = rest === 0;
    $("all").hidden = !showAll;
    if (!showAll) return;
    const needle = $("filter").value.trim().toLowerCase();
    const groups = $("groups");
    groups.replaceChildren();
    for (const [kind, title] of GROUPS) {
      // Without a filter: the options not listed above; a filter searches them all.
      const opts = task.options.filter((o) => o.kind === kind && (needle
        ? o.text.toLowerCase().includes(needle) || o.id.toLowerCase().includes(needle) : !o.likely));
      if (!opts.length) continue;
      const group = el("div", "group");
      group.appendChild(el("h3", null, title));
      const ol = el("ol", "options");
      ol.append(...opts.map((o) => optionRow(o)));
      group.appendChild(ol);
      groups.appendChild(group);
    }
    if (!groups.children.length) groups.appendChild(el("p", "muted", "no option matches"));
  }

  function render(next, fromAction) {
    const before = state && state.task ? state.task.id : null;
    state = next;
    const p = state.progress;
    $("queue").textContent = "· " + state.queue + " · " + state.annotator;
    $("meter-fill").style.width = p.total ? (100 * p.done / p.total).toFixed(1) + "%" : "0";
    let progress = p.done + " of " + p.total + " answered";
    if (p.skipped) progress += " · " + p.skipped + " skipped";
    $("undo").disabled = !state.can_undo;
    if (!state.task) {
      $("progress-text").textContent = progress;
      $("main").hidden = true;
      $("done").hidden = false;
      document.title = "done · qi-extractor review";
      setStatus(state.message, "ok");
      return;
    }
    $("main").hidden = false;
    $("done").hidden = true;
    const task = state.task;
    $("progress-text").textContent = "task " + Math.min(p.done + 1, p.total) + " of " + p.total + " · " + progress;
    document.title = "(" + p.done + "/" + p.total + ") qi-extractor review";
    if (task.id !== before || fromAction) {
      selection = new Set(task.selection);
      $("filter").value = "";
      window.scrollTo(0, 0);
    }
    const interview = String(task.interview);
    $("where").textContent = (/^interview/i.test(interview) ? "" : "Interview ") + interview + " · turn " + task.turn + (task.model ? " · model " + task.model : "");
    showTurn("previous", task.previous, speakerLabel("Before", task.previous));
    showTurn("question", task.question ? { text: task.question } : null);
    $("current").querySelector(".text").textContent = task.text;
    showTurn("next", task.next, speakerLabel("After", task.next));
    renderOptions();
    if (state.message) setStatus(state.message, "ok");
    else if (before && task.id !== before && !fromAction) {
      setStatus("the task you had open was answered or taken elsewhere; here is the next one", "ok");
    }
  }

  function toggle(id) {
    if (!state || !state.task) return;
    if (selection.has(id)) selection.delete(id); else selection.add(id);
    renderOptions();
  }

  async function refresh() {
    try {
      render(await call("GET", "api/state?tab=" + encodeURIComponent(tab)), false);
    } catch (e) {
      setStatus("could not reach the reviewer: " + e.message, "error");
    }
  }

  async function act(path, body) {
    if (busy) return;
    busy = true;
    document.body.setAttribute("aria-busy", "true");
    try {
      render(await call("POST", path, Object.assign({ tab }, body)), true);
    } catch (e) {
      setStatus("not saved: " + e.message, "error");
    } finally {
      busy = false;
      document.body.removeAttribute("aria-busy");
    }
  }

  function answer(kind) {
    if (!state || !state.task) return;
    const picked = state.task.options.map((o) => o.id).filter((id) => selection.has(id));
    act("api/answer", { id: state.task.id, answer: kind, accept: kind === "accept" ? picked : [] });
  }
  function skip() { if (state && state.task) act("api/skip", { id: state.task.id }); }
  function undo() { act("api/undo", {}); }
  function toggleAll() { showAll = !showAll; renderOptions(); }
  function toggleDefs() {
    showDefs = !showDefs;
    $("defs").setAttribute("aria-pressed", String(showDefs));
    renderOptions();
  }
  function help(open) {
    $("help").hidden = !open;
    if (open) $("help-close").focus();
  }

  $("accept").addEventListener("click", () => answer("accept"));
  $("reject").addEventListener("click", () => answer("reject"));
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("more").addEventListener("click", toggleAll);
  $("defs").addEventListener("click", toggleDefs);
  $("help-button").addEventListener("click", () => help(true));
  $("help-close").addEventListener("click", () => help(false));
  $("filter").addEventListener("input", renderOptions);

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (!$("help").hidden) {
      if (ev.key === "Escape" || ev.key === "?") { ev.preventDefault(); help(false); }
      return;
    }
    if (ev.target === $("filter")) {
      if (ev.key === "Escape") { ev.preventDefault(); $("filter").value = ""; $("filter").blur(); renderOptions(); }
      if (ev.key === "Enter") {
        ev.preventDefault();
        const first = $("groups").querySelector("li.option");
        if (first) { toggle(first.dataset.id); $("filter").select(); }
      }
      return;
    }
    if (/^[0-9]$/.test(ev.key)) {
      const number = ev.key === "0" ? 10 : Number(ev.key);
      const opt = state && state.task ? state.task.options.find((o) => o.number === number) : null;
      if (opt) { ev.preventDefault(); toggle(opt.id); }
      return;
    }
    const actions = { a: () => answer("accept"), x: () => answer("reject"),
                      s: skip, u: undo, o: toggleAll, d: toggleDefs, "?": () => help(true),
                      "/": () => { if (!showAll) toggleAll(); $("filter").focus(); } };
    if (Object.prototype.hasOwnProperty.call(actions, ev.key)) {
      ev.preventDefault();
      actions[ev.key]();
    }
  });

  // Keep this tab's claim on its task fresh and notice answers made elsewhere.
  setInterval(() => { if (!busy && !document.hidden) refresh(); }, 30000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden && !busy) refresh(); });
  refresh();
})();
