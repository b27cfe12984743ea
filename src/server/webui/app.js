// The worker's built-in chat page: streams /v1/chat/completions from the same origin. Model text is only ever set as
// textContent, never parsed as HTML, so nothing a model writes can run in the page.
"use strict";

const $ = (id) => document.getElementById(id);
const history = [];  // {role, content} of the conversation so far
let modelId = null;
let running = null;  // AbortController of the answer being streamed

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api_key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = text;
  div.appendChild(body);
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function setStatus(text) { $("status").textContent = text; }

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    if (!r.ok) throw new Error("GET /v1/models: HTTP " + r.status);
    const j = await r.json();
    modelId = j.data && j.data.length ? j.data[0].id : null;
    $("model-name").textContent = modelId || "(no model)";
    const info = $("model-info");
    info.replaceChildren();
    const h = await fetch("/health").then((x) => x.json()).catch(() => ({}));
    for (const [k, v] of Object.entries({ model: modelId, arch: h.arch, quantization: h.quant_kind,
                                          device: h.device, context: h.context_length, status: h.status })) {
      if (v === undefined || v === null) continue;
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = String(v);
      info.append(dt, dd);
    }
    setStatus("ready");
  } catch (e) {
    $("model-name").textContent = "not connected";
    setStatus(String(e.message || e) + " (set the API key in Settings if the server needs one)");
  }
}

function requestBody(messages) {
  const num = (id) => { const v = $(id).value.trim(); return v === "" ? undefined : Number(v); };
  const body = { model: modelId, messages, stream: true, stream_options: { include_usage: true },
                 temperature: num("temperature"), top_p: num("top_p"), top_k: num("top_k"), min_p: num("min_p"),
                 max_tokens: num("max_tokens"), seed: num("seed") };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

// Reads an SSE stream and calls onData with each `data:` payload.
async function readEvents(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of event.split("\n")) if (line.startsWith("data: ")) onData(line.slice(6));
    }
  }
}

async function send(text) {
  if (!modelId) await loadModel();
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const div = addMessage("assistant", "");
  const body = div.querySelector(".body");
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...history);

  running = new AbortController();
  $("send").disabled = true; $("stop").disabled = false;
  setStatus("generating…");
  let answer = "", tokens = 0, first = null, usage = null;
  const t0 = performance.now();
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(),
                                                    body: JSON.stringify(requestBody(messages)),
                                                    signal: running.signal });
    if (!r.ok) {
      const j = await r.json().catch(() => null);
      throw new Error((j && j.error && j.error.message) || ("HTTP " + r.status));
    }
    await readEvents(r, (data) => {
      if (data === "[DONE]") return;
      const j = JSON.parse(data);
      if (j.usage) usage = j.usage;
      const piece = j.choices && j.choices.length ? j.choices[0].delta && j.choices[0].delta.content : null;
      if (piece) {
        if (first === null) first = performance.now();
        answer += piece; tokens += 1;
        body.textContent = answer;
        $("log").scrollTop = $("log").scrollHeight;
      }
    });
  } catch (e) {
    if (e.name !== "AbortError") { div.classList.add("error"); body.textContent = answer + "\n" + (e.message || e); }
  } finally {
    const stopped = running.signal.aborted;
    running = null;
    $("send").disabled = false; $("stop").disabled = true;
    const n = usage ? usage.completion_tokens : tokens;
    const secs = first !== null ? (performance.now() - first) / 1000 : 0;
    const rate = secs > 0 && n > 1 ? ((n - 1) / secs).toFixed(1) : "–";
    const ttft = first !== null ? Math.round(first - t0) + " ms to first token" : "no tokens";
    const stats = document.createElement("span");
    stats.className = "stats";
    stats.textContent = `${stopped ? "stopped · " : ""}${n} tokens · ${rate} tok/s · ${ttft}`;
    div.appendChild(stats);
    if (!div.classList.contains("error")) history.push({ role: "assistant", content: answer });
    setStatus(stopped ? "stopped" : "ready");
  }
}

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("input").value;
  if (!text.trim() || running) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("composer").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (running) running.abort(); });
$("new-chat").addEventListener("click", () => { if (running) running.abort(); history.length = 0; $("log").replaceChildren(); });
$("settings-toggle").addEventListener("click", () => {
  const s = $("settings"); s.hidden = !s.hidden;
  $("settings-toggle").setAttribute("aria-expanded", String(!s.hidden));
});
$("api_key").addEventListener("change", loadModel);
loadModel();
