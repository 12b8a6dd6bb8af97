"use strict";
// What both pages of the web reviewer share, inlined before each page's own script.

// The JSON API: one request, its JSON answer, or an Error carrying the server's one-line message.
async function call(method, url, body) {
  const init = { method, headers: { Accept: "application/json" }, cache: "no-store" };
  if (body) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) throw new Error((data && data.error) || resp.status + " " + resp.statusText);
  return data;
}
