"use strict";
// The proposals view: every text from the proposals file is put in the page with
// textContent, never parsed as HTML (it quotes interviews).
(function () {
  const $ = (id) => document.getElementById(id);
  let state = null;
  let selected = 0;
  let mode = ""; // "", "name", "definition", "merge", "subtype"

  function setStatus(text, kind) {
    $("status").textContent = text || "";
    $("status").className = kind || "";
  }

  function decisionText(p) {
    if (!p.decision) return "undecided";
    if (p.decision === "merge") return "merged into #" + numberOf(p.merge_into);
    if (p.decision === "subtype") return "sub-type of " + p.subtype_of;
    return p.decision === "accept" ? "accepted" : "rejected";
  }

  function numberOf(id) {
    const p = state.proposals.find((q) => q.id === id);
    return p ? p.number : "?";
  }

  function item(text, cls) {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    return li;
  }

  function renderList() {
    const list = $("list");
    list.replaceChildren();
    state.proposals.forEach((p, k) => {
      const li = item(p.name, (k === selected ? "selected " : "") + (p.decision || "open"));
      const d = document.createElement("span");
      d.className = "decision";
      d.textContent = " " + decisionText(p);
      li.appendChild(d);
      li.addEventListener("click", () => { selected = k; render(); });
      list.appendChild(li);
    });
  }

  function renderDetail() {
    const p = state.proposals[selected];
    $("name").textContent = p ? "#" + p.number + " " + p.name : "No proposals";
    if (!p) return;
    $("definition").textContent = p.definition || "(no definition yet: press d)";
    $("said").textContent = "Heard in " + p.size + " turns from " + p.interviews.length + " interviews (" +
      p.interviews.join(", ") + "). Distinctive words: " + p.keywords.join(", ") + ".";
    $("why-not").textContent = p.why_not;
    $("decision").textContent = "Decision: " + decisionText(p);
    $("quotes").replaceChildren(...p.quotes.map((q) => item("\u201c" + q.text + "\u201d \u2014 " + q.interview +
      ", turn " + q.turn)));
  }

  function render() {
    if (!state) return;
    selected = Math.max(0, Math.min(selected, state.proposals.length - 1));
    const pr = state.progress;
    $("progress-text").textContent = pr.decided + " of " + pr.total + " decided";
    renderList();
    renderDetail();
  }

  async function send(url, body) {
    try {
      state = await call("POST", url, body);
      setStatus(state.message);
    } catch (e) {
      setStatus(String(e.message || e), "error");
    }
    render();
  }

  function current() { return state && state.proposals[selected]; }

  function openForm(which) {
    const p = current();
    if (!p) return;
    mode = which;
    const form = { name: "name-form", definition: "definition-form" }[which] || "target-form";
    $(form).hidden = false;
    if (which === "name") { $("name-input").value = p.name; $("name-input").focus(); }
    if (which === "definition") { $("definition-input").value = p.definition; $("definition-input").focus(); }
    if (which === "merge" || which === "subtype") {
      $("target-label").textContent = which === "merge" ? "Merge into proposal number" : "Sub-type of catalog entry id";
      const opts = which === "merge"
        ? state.proposals.filter((q) => q.id !== p.id).map((q) => [String(q.number), q.name])
        : state.entries.map((e) => [e.id, e.name]);
      $("targets").replaceChildren(...opts.map(([v, label]) => {
        const o = document.createElement("option");
        o.value = v;
        o.label = label;
        return o;
      }));
      $("target-input").value = "";
      $("target-input").focus();
    }
  }

  function closeForms() {
    mode = "";
    for (const f of ["name-form", "definition-form", "target-form"]) $(f).hidden = true;
    document.activeElement && document.activeElement.blur();
  }

  async function submitForm() {
    const p = current();
    const which = mode;
    closeForms();
    if (which === "name") return send("/api/proposals/edit", { id: p.id, name: $("name-input").value });
    if (which === "definition") return send("/api/proposals/edit", { id: p.id, definition: $("definition-input").value });
    const value = $("target-input").value.trim();
    if (which === "merge") {
      const target = state.proposals.find((q) => String(q.number) === value);
      return send("/api/proposals/decide", { id: p.id, decision: "merge", target: target ? target.id : value });
    }
    return send("/api/proposals/decide", { id: p.id, decision: "subtype", target: value });
  }

  document.addEventListener("submit", (ev) => { ev.preventDefault(); submitForm(); });

  document.addEventListener("keydown", (ev) => {
    if (mode) {
      if (ev.key === "Escape") { closeForms(); ev.preventDefault(); }
      else if (mode === "definition" && ev.key === "Enter" && ev.ctrlKey) { ev.preventDefault(); submitForm(); }
      return;
    }
    if (!state || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const p = current();
    const moves = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 };
    if (ev.key in moves) { selected += moves[ev.key]; render(); ev.preventDefault(); return; }
    if (!p) return;
    const decide = { a: "accept", x: "reject", u: "" };
    if (ev.key in decide) { ev.preventDefault(); send("/api/proposals/decide", { id: p.id, decision: decide[ev.key] }); }
    const forms = { n: "name", d: "definition", m: "merge", t: "subtype" };
    if (ev.key in forms) { ev.preventDefault(); openForm(forms[ev.key]); }
  });

  call("GET", "/api/proposals").then((s) => { state = s; render(); },
    (e) => setStatus(String(e.message || e), "error"));
})();
