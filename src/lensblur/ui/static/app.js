// lensblur ui: the page. Every setting is sent to the server, which turns it into a `lensblur render` command
// line and renders with it; the page only draws what comes back.
"use strict";

const $ = (id) => document.getElementById(id);
const F_NUMBERS = [1, 1.2, 1.4, 1.8, 2, 2.5, 2.8, 3.5, 4, 4.5, 5.6, 6.3, 8, 9, 11, 13, 16, 18, 22];

const state = {
  session: null, width: 0, height: 0, focus: null, depthVersion: 0, depthRange: null,
  inFlight: false, pending: null, job: null, previews: 0, shownDraft: false, searching: false, lightsTimer: null,
};

function showError(text) {
  const box = $("error");
  box.textContent = text || "";
  box.hidden = !text;
  if (text) box.scrollIntoView({ block: "nearest" });
}

async function api(path, options = {}) {
  const reply = await fetch(path, options);
  let body;
  try { body = await reply.json(); } catch (e) { body = { error: `the server answered ${reply.status}` }; }
  if (!reply.ok || body.error) throw new Error(body.error || `the server answered ${reply.status}`);
  return body;
}

function settings() {
  const mode = document.querySelector("input[name=mode]:checked").value;
  const s = {
    mode,
    blur: Number($("blur").value),
    f_number: F_NUMBERS[Number($("f-number").value)],
    focal_length: $("focal-length").value === "" ? null : Number($("focal-length").value),
    sensor_width: $("sensor-width").value === "" ? null : Number($("sensor-width").value),
    aperture: $("aperture").value,
    blades: Number($("blades").value),
    rotation: Number($("rotation").value),
    curvature: Number($("curvature").value),
    cat_eye: Number($("cat-eye").value),
    highlights: Number($("highlights").value),
    method: $("method").value,
    checkpoint: $("checkpoint").value.trim() || null,
    depth_model: $("depth-model").value.trim() || null,
    refine: $("refine").checked,
    normalize: $("normalize").checked,
    resize: $("resize").checked,
    focus: state.focus,
  };
  if ($("depth-scale").value !== "") s.depth_scale = Number($("depth-scale").value);
  if ($("near").value !== "" && $("far").value !== "") {
    s.depth_range = [Number($("near").value), Number($("far").value)];
  }
  return s;
}

// ------------------------------------------------------------------------------------------ preview
// One preview in flight at a time; the latest settings go next. A draft (a quarter of the pixels) is asked for
// while a slider is being dragged, the full preview when it is let go; a pending full one wins over a draft.
function schedulePreview(draft = false) {
  if (!state.session) return;
  if (state.inFlight) {
    state.pending = { draft: draft && (state.pending === null || state.pending.draft) };
    return;
  }
  preview(draft);
}

async function preview(draft = false) {
  state.inFlight = true;
  state.pending = null;
  $("status").textContent = "rendering the preview…";
  try {
    const body = await api(`/api/session/${state.session}/preview`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...settings(), draft }),
    });
    await new Promise((resolve) => { $("after").onload = resolve; $("after").onerror = resolve;
                                      $("after").src = body.image; });
    state.previews += 1;
    state.shownDraft = body.draft;
    $("after").dataset.count = String(state.previews);
    $("command").textContent = body.command;
    $("copy").disabled = false;
    $("render").disabled = false;
    $("focus-pull").disabled = false;
    $("focus-pull-mp4").disabled = false;
    let focusText = "";
    if (body.focus_disparity !== undefined) {
      focusText = `focus disparity ${body.focus_disparity.toFixed(3)}, blur ${body.blur.toFixed(1)} px`;
      if (body.focus_distance !== undefined) focusText += `, ${body.focus_distance.toFixed(2)} m`;
    }
    $("status").textContent = `${body.draft ? "draft" : "preview"} ${body.size[0]}x${body.size[1]} rendered in ` +
      `${Math.round(body.render_seconds * 1000)} ms (${body.method}); ${focusText}`;
    $("status").dataset.ready = String(state.previews);
    if (body.lights === "searching") {
      // the photo's lights are still being searched for at full size: this preview's highlights are the shrunk
      // photo's; ask again shortly for the preview with the render's highlights
      $("status").textContent += "; finding the photo's lights at full size…";
      state.searching = true;
      if (!state.lightsTimer) {
        state.lightsTimer = setTimeout(() => { state.lightsTimer = null; schedulePreview(false); }, 800);
      }
    } else {
      state.searching = false;
    }
    if (body.depth) await showDepth(body.depth);
    showError("");
  } catch (e) {
    showError(e.message);
    $("status").textContent = "";
    $("status").dataset.failed = String(Date.now());
  } finally {
    state.inFlight = false;
    if (state.pending) preview(state.pending.draft);
  }
}

async function showDepth(depth) {
  $("depth-source").textContent = `depth: ${depth.source}`;
  $("depth-error").hidden = true;
  state.depthRange = depth.depth_range;
  if (depth.version !== state.depthVersion) {
    state.depthVersion = depth.version;
    if (depth.image === undefined) {
      depth = await api(`/api/session/${state.session}/depth`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings()),
      });
    }
    $("depth").src = depth.image;
  }
  updateDistanceLabel();
}

// ------------------------------------------------------------------------------------------ uploads
async function upload(url, file) {
  if (state.limits && file.size > state.limits.max_upload_mb * 1048576) {
    throw new Error(`upload: expected a file of at most ${state.limits.max_upload_mb} MB, got ` +
                    `${(file.size / 1048576).toFixed(1)} MB. Fix: shrink the file, or start lensblur ui with a ` +
                    "larger --max-upload-mb");
  }
  return api(`${url}?name=${encodeURIComponent(file.name)}`, {
    method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file,
  });
}

async function dropPhoto(file) {
  if (!file) return;
  showError("");
  const previous = $("drop-text").textContent;
  $("drop-text").textContent = `reading ${file.name}…`;
  try {
    const body = await upload("/api/photo", file);
    $("render").disabled = true;
    $("focus-pull").disabled = true;
    $("focus-pull-mp4").disabled = true;
    $("download").hidden = true;
    Object.assign(state, { session: body.session, width: body.width, height: body.height, focus: null,
                           depthVersion: 0, depthRange: null });
    $("gen-init-photo").disabled = false;
    $("gen-init-photo").textContent = `Use the Refocus tab's photo (${body.name})`;
    $("drop-text").textContent = `${body.name}: ${body.width}x${body.height} (drop another photo to change)`;
    $("before").src = body.before;
    $("after").src = body.before;
    $("viewer").classList.remove("empty");
    $("focal-length").placeholder = body.focal_length ? `${body.focal_length} (EXIF)` : "50 (no EXIF)";
    $("sensor-width").placeholder = body.sensor_width ? `${body.sensor_width.toFixed(1)} (EXIF)` : "36";
    for (const role of ["disparity", "right"]) $(`${role}-name`).textContent = "";
    drawFocus();
    if (body.depth) {
      await showDepth(body.depth);
    } else {
      $("depth-source").textContent = "no depth yet";
      $("depth-error").textContent = body.depth_error;
      $("depth-error").hidden = false;
    }
    if (body.depth) schedulePreview();
  } catch (e) {
    $("drop-text").textContent = previous;       // the photo before (if any) stays
    showError(e.message);
  }
}

async function dropFile(role, file) {
  if (!state.session || !file) { showError("drop a photo first"); return; }
  try {
    const body = await upload(`/api/session/${state.session}/file/${role}`, file);
    const label = $(`${role}-name`);
    if (label) label.textContent = body.name;
    schedulePreview();
  } catch (e) { showError(e.message); }
}

// ------------------------------------------------------------------------------------------ focus
function imagePoint(event) {
  const rect = $("after").getBoundingClientRect();
  const fx = Math.min(Math.max((event.clientX - rect.left) / rect.width, 0), 0.999999);
  const fy = Math.min(Math.max((event.clientY - rect.top) / rect.height, 0), 0.999999);
  return { fx, fy, x: Math.floor(fx * state.width), y: Math.floor(fy * state.height) };
}

function drawFocus(dragBox) {
  const marker = $("marker"), box = $("box");
  const focus = dragBox || state.focus;
  marker.hidden = !(focus && focus.point);
  box.hidden = !(focus && focus.box);
  if (focus && focus.point) {
    marker.style.left = `${(focus.point[0] + 0.5) / state.width * 100}%`;
    marker.style.top = `${(focus.point[1] + 0.5) / state.height * 100}%`;
    $("focus-readout").textContent = `point ${focus.point[0]},${focus.point[1]}`;
  } else if (focus && focus.box) {
    const [x0, y0, x1, y1] = focus.box;
    Object.assign(box.style, { left: `${x0 / state.width * 100}%`, top: `${y0 / state.height * 100}%`,
      width: `${(x1 - x0) / state.width * 100}%`, height: `${(y1 - y0) / state.height * 100}%` });
    $("focus-readout").textContent = `box ${x0},${y0} to ${x1},${y1}`;
  } else if (focus && focus.distance !== undefined) {
    $("focus-readout").textContent = `distance ${focus.distance.toFixed(2)} m`;
  } else {
    $("focus-readout").textContent = "centre of the frame";
  }
}

let dragStart = null;
function boxFrom(a, b) {
  const x0 = Math.min(a.x, b.x), y0 = Math.min(a.y, b.y);
  const x1 = Math.max(a.x, b.x) + 1, y1 = Math.max(a.y, b.y) + 1;
  return { box: [x0, y0, x1, y1] };
}
$("viewer").addEventListener("pointerdown", (event) => {
  if (!state.session || event.button !== 0) return;
  dragStart = { ...imagePoint(event), cx: event.clientX, cy: event.clientY };
  $("viewer").setPointerCapture(event.pointerId);
});
$("viewer").addEventListener("pointermove", (event) => {
  if (!dragStart) return;
  if (Math.hypot(event.clientX - dragStart.cx, event.clientY - dragStart.cy) > 6) {
    drawFocus(boxFrom(dragStart, imagePoint(event)));
  }
});
$("viewer").addEventListener("pointerup", (event) => {
  if (!dragStart) return;
  const end = imagePoint(event);
  const moved = Math.hypot(event.clientX - dragStart.cx, event.clientY - dragStart.cy) > 6;
  state.focus = moved ? boxFrom(dragStart, end) : { point: [dragStart.x, dragStart.y] };
  dragStart = null;
  drawFocus();
  schedulePreview();
});
$("focus-clear").addEventListener("click", () => { state.focus = null; drawFocus(); schedulePreview(); });

// ------------------------------------------------------------------------------------------ controls
function distanceFromSlider() {
  if (!state.depthRange) return null;
  const [near, far] = state.depthRange, t = Number($("focus-distance").value) / 1000;
  return near * Math.pow(far / near, t);
}
function updateDistanceLabel() {
  const d = state.focus && state.focus.distance;
  $("distance-value").textContent = d ? `${d.toFixed(2)} m` : (state.depthRange ? "from the click" :
    "needs a metric depth range");
}

function bindValue(id, format = (v) => v) {
  const input = $(id), out = $(`${id}-value`);
  const update = () => { if (out) out.textContent = format(input.value); };
  input.addEventListener("input", () => { update(); schedulePreview(true); });
  input.addEventListener("change", () => schedulePreview(false));
  update();
}

async function init() {
  try {
    const info = await api("/api/info");
    for (const name of [...info.apertures, "blades", "custom"]) {
      $("aperture").add(new Option(name === "custom" ? "custom image" : name === "blades" ? "N blades" : name,
                                   name));
    }
    for (const m of info.methods) {
      $("method").add(new Option(m.classical ? m.name : `${m.name} (needs a model)`, m.name));
    }
    const l = info.limits;
    state.limits = l;
    $("limits").textContent = `files up to ${l.max_upload_mb} MB, photos up to ${l.max_megapixels} MP; ` +
      `previews about ${l.preview_megapixels} MP`;
    initGenerate(info.generate);
  } catch (e) { showError(e.message); }
}

bindValue("blur");
bindValue("f-number", (v) => F_NUMBERS[Number(v)]);
bindValue("blades");
bindValue("rotation");
bindValue("curvature");
bindValue("cat-eye");
bindValue("highlights");
$("focus-distance").addEventListener("input", () => {
  const d = distanceFromSlider();
  if (d === null) { updateDistanceLabel(); return; }
  state.focus = { distance: d };
  drawFocus();
  updateDistanceLabel();
  schedulePreview(true);
});
$("focus-distance").addEventListener("change", () => { if (state.focus && state.focus.distance) schedulePreview(); });
for (const id of ["focal-length", "sensor-width", "checkpoint", "depth-model", "near", "far", "depth-scale"]) {
  $(id).addEventListener("change", schedulePreview);
}
for (const id of ["refine", "normalize", "resize"]) $(id).addEventListener("change", schedulePreview);
for (const radio of document.querySelectorAll("input[name=mode]")) {
  radio.addEventListener("change", () => {
    const camera = settings().mode === "camera";
    $("camera-controls").hidden = !camera;
    $("blur-controls").hidden = camera;
    if (!camera && state.focus && state.focus.distance !== undefined) { state.focus = null; drawFocus(); }
    schedulePreview();
  });
}
$("aperture").addEventListener("change", () => {
  $("blades-row").hidden = $("aperture").value !== "blades";
  $("custom-row").hidden = $("aperture").value !== "custom";
  if ($("aperture").value !== "custom" || $("aperture-input").files.length) schedulePreview();
});
$("method").addEventListener("change", () => {
  const selected = $("method").selectedOptions[0];
  $("checkpoint-row").hidden = !selected || !selected.text.includes("needs a model");
  schedulePreview();
});
$("aperture-input").addEventListener("change", () => dropFile("aperture", $("aperture-input").files[0]));
$("disparity-input").addEventListener("change", () => dropFile("disparity", $("disparity-input").files[0]));
$("right-input").addEventListener("change", () => dropFile("right", $("right-input").files[0]));
$("photo-input").addEventListener("change", () => dropPhoto($("photo-input").files[0]));

const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
document.addEventListener("drop", (e) => {
  const files = [...e.dataTransfer.files];
  if (!files.length) return;
  if (!$("generate-tab").hidden) { genInit(files[0]); return; }     // on the Generate tab: the init image
  showTab("refocus");
  // A photo and its disparity map dropped together: the one named like a depth map is the map.
  const isMap = (f) => /disp|depth/i.test(f.name);
  const photo = files.find((f) => !isMap(f)) || files[0];
  const map = files.find((f) => f !== photo && isMap(f));
  dropPhoto(photo).then(() => { if (map) dropFile("disparity", map); });
});

// before / after and the depth map
function updateSplit() {
  const split = Number($("split").value);
  $("before").style.clipPath = `inset(0 ${100 - split}% 0 0)`;
}
$("split").addEventListener("input", updateSplit);
updateSplit();
$("show-depth").addEventListener("change", () => { $("depth").hidden = !$("show-depth").checked; });

$("copy").addEventListener("click", async () => {
  const text = $("command").textContent;
  try { await navigator.clipboard.writeText(text); $("copy").textContent = "Copied"; }
  catch (e) {
    const range = document.createRange();
    range.selectNodeContents($("command"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    $("copy").textContent = "Selected";
  }
  setTimeout(() => { $("copy").textContent = "Copy"; }, 1500);
});

// ------------------------------------------------------------------------------------------ full render
async function runJob(kind, button) {
  if (!state.session) return;
  for (const id of ["render", "focus-pull", "focus-pull-mp4"]) $(id).disabled = true;
  $("download").hidden = true;
  const bar = $("progress");
  bar.hidden = false;
  bar.removeAttribute("value");
  try {
    let job = await api(`/api/session/${state.session}/${kind}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings()),
    });
    while (job.state === "running") {
      if (job.total > 0) { bar.max = job.total; bar.value = job.done; }
      await new Promise((resolve) => setTimeout(resolve, 250));
      job = await api(`/api/session/${state.session}/job/${job.id}`);
    }
    if (job.state === "failed") throw new Error(job.error);
    bar.max = 1; bar.value = 1;
    const link = $("download");
    link.href = `/api/session/${state.session}/job/${job.id}/file`;
    link.download = job.file;
    link.textContent = `Download ${job.file} (${job.seconds.toFixed(1)} s)`;
    link.hidden = false;
  } catch (e) {
    showError(e.message);
    bar.hidden = true;
  } finally {
    for (const id of ["render", "focus-pull", "focus-pull-mp4"]) $(id).disabled = false;
  }
}
$("render").addEventListener("click", () => runJob("render"));
$("focus-pull").addEventListener("click", () => runJob("focus-pull?format=gif"));
$("focus-pull-mp4").addEventListener("click", () => runJob("focus-pull?format=mp4"));

// ------------------------------------------------------------------------------------------ tabs
function showTab(name) {
  for (const tab of ["refocus", "generate"]) {
    $(`${tab}-tab`).hidden = tab !== name;
    $(`tab-${tab}`).classList.toggle("active", tab === name);
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
  }
}
$("tab-refocus").addEventListener("click", () => showTab("refocus"));
$("tab-generate").addEventListener("click", () => showTab("generate"));

// ------------------------------------------------------------------------------------------ generate tab
// The settings become a `lensblur generate` command line on the server, which runs that command; the page shows
// the baseline and the result, and the focus report of the box dragged on the result.
const gen = { job: null, box: null, size: null, files: [], init: null };

function initGenerate(info) {
  if (!info) return;
  $("gen-sigma").value = info.sigma;
  $("gen-alpha").value = info.alpha;
  $("gen-strength").value = info.strength;
  for (const id of ["gen-sigma", "gen-alpha", "gen-strength"]) {
    const update = () => { $(`${id}-value`).textContent = $(id).value; };
    $(id).addEventListener("input", update);
    update();
  }
  $("gen-model").textContent = info.model || "none";
  $("gen-message").textContent = info.message || "";
  $("gen-message").hidden = !info.message;
  $("gen-run").disabled = !info.model;
  $("tab-generate").title = info.model ? "stage diffusion with " + info.model : info.message;
}

function genSettings() {
  const size = $("gen-size").value.trim().toLowerCase().split("x").map(Number);
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  return {
    prompt: $("gen-prompt").value, focus: $("gen-focus").value.trim() || null,
    sigma: Number($("gen-sigma").value), alpha: Number($("gen-alpha").value), steps: number("gen-steps"),
    size: size.length === 2 && size.every((v) => Number.isFinite(v)) ? size : $("gen-size").value,
    seed: number("gen-seed"), guidance: number("gen-guidance"),
    negative_prompt: $("gen-negative").value.trim() || null,
    init_image: gen.init ? gen.init.id : null,
    strength: gen.init ? Number($("gen-strength").value) : null,
  };
}

// The init image: the Refocus tab's photo (?session=) or a picture dropped on this tab, read by the server as
// lensblur generate --init-image reads it (a bad file gets the command's message); one over the tab's limit comes
// back shrunk into a PNG the command line names, offered for download.
async function genInit(file) {
  showError("");
  $("gen-init-name").textContent = file ? `reading ${file.name}…` : "reading the Refocus tab's photo…";
  try {
    let body;
    if (file) {
      body = await upload("/api/generate/init", file);
    } else {
      body = await api(`/api/generate/init?session=${state.session}`, { method: "POST" });
    }
    showInit(body);
  } catch (e) {
    showInit(gen.init);                      // the init image before (if any) stays
    showError(e.message);
  }
}

function showInit(init) {
  gen.init = init || null;
  $("gen-init").hidden = !init;
  $("gen-size").disabled = Boolean(init);
  $("gen-size-note").hidden = !init;
  $("gen-init-download").hidden = !(init && init.file);
  if (!init) { $("gen-init-thumb").removeAttribute("src"); $("gen-init-name").textContent = ""; return; }
  $("gen-init-thumb").src = init.image;
  const [w, h] = init.size, [uw, uh] = init.used;
  $("gen-init-name").textContent = init.shrunk
    ? `${w}x${h}, over the tab's limit: shrunk to ${init.name} (${uw}x${uh}), the file the command line names`
    : `${init.name}: ${w}x${h}` + (uw !== w || uh !== h ? ` (the command crops it to ${uw}x${uh})` : "");
  if (init.file) {
    $("gen-init-download").href = init.file;
    $("gen-init-download").download = init.name;
    $("gen-init-download").textContent = `Download ${init.name}`;
  }
}

function showSteps(job) {
  const bar = $("gen-progress");
  if (job.steps > 0) { bar.max = job.steps; bar.value = job.step; }
  $("gen-step").hidden = false;
  $("gen-step").textContent = `step ${job.step} of ${job.steps}` + (job.phase && job.state === "running"
    ? `: ${job.phase}` : "");
  $("gen-step").dataset.step = String(job.step);
  $("gen-step").dataset.steps = String(job.steps);
}

async function generate() {
  showError("");
  $("gen-run").disabled = true;
  delete $("gen-status").dataset.done;
  const bar = $("gen-progress");
  bar.hidden = false;
  bar.max = 1;
  bar.value = 0;
  $("gen-status").textContent = "generating: the model loads, then the baseline and the result run their steps…";
  const started = Date.now();
  try {
    let job = await api("/api/generate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(genSettings()),
    });
    $("gen-command").textContent = job.command;
    showSteps(job);
    while (job.state === "running") {
      await new Promise((resolve) => setTimeout(resolve, 250));
      job = await api(`/api/generate/${job.id}`);
      showSteps(job);
      $("gen-status").textContent = `generating… ${Math.round((Date.now() - started) / 1000)} s`;
    }
    if (job.state === "failed") throw new Error(job.error);
    const [baseline, ...results] = job.images;
    const result = results[results.length - 1];
    $("gen-baseline").src = baseline.image;
    const from = job.source ? `, from ${job.source}` : "";
    $("gen-baseline-caption").textContent = `baseline (${baseline.file}): the prompt alone, ` +
      `${baseline.global_steps} steps${from}`;
    if (result) {
      $("gen-result").src = result.image;
      $("gen-result-caption").textContent = `stage diffusion (${result.file}): ${result.global_steps} layout + ` +
        `${result.focus_steps} focus steps, sigma ${result.sigma}, alpha ${result.alpha}${from}; drag a box to score it`;
    } else {
      $("gen-result").removeAttribute("src");
      $("gen-result-caption").textContent = "no focus prompt: the baseline only";
    }
    $("gen-downloads").replaceChildren(...job.images.map((img) => {
      const link = document.createElement("a");
      link.href = `/api/generate/${job.id}/file/${encodeURIComponent(img.file)}`;
      link.download = img.file;
      link.textContent = `Download ${img.file}`;
      return link;
    }));
    document.querySelector(".gen-pair").scrollIntoView({ block: "nearest" });   // the pictures, in view
    gen.job = job.id;
    gen.box = null;
    drawGenBox();
    $("gen-whole").disabled = false;
    $("gen-status").textContent = `generated in ${job.seconds.toFixed(1)} s`;
    $("gen-status").dataset.done = job.id;
    await genReport();
  } catch (e) {
    showError(e.message);
    $("gen-status").textContent = "";
    bar.hidden = true;
    $("gen-step").hidden = true;
  } finally {
    $("gen-run").disabled = false;
  }
}

async function genReport() {
  if (!gen.job) return;
  try {
    const report = await api(`/api/generate/${gen.job}/report`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(gen.box ? { box: gen.box } : {}),
    });
    const fmt = (v) => (v === null ? "" : v >= 100 ? v.toFixed(0) : v.toFixed(3));
    const rows = report.scores.map((s) => {
      const row = document.createElement("tr");
      const region = s.box ? `${s.region} (${s.box.join(",")})` : "whole image";
      for (const text of [s.image.replace("generated/", ""), region, fmt(s.vol), s.vol_ratio === null ? "baseline" :
        `${s.vol_ratio.toFixed(2)}x`, fmt(s.brenner), s.brenner_ratio === null ? "baseline" :
        `${s.brenner_ratio.toFixed(2)}x`]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    });
    $("gen-report").querySelector("tbody").replaceChildren(...rows);
    $("gen-report").hidden = false;
    $("gen-report").dataset.box = gen.box ? gen.box.join(",") : "whole";
    $("gen-report-command").textContent = report.command;
  } catch (e) { showError(e.message); }
}

function genPoint(event) {
  const img = $("gen-result"), rect = img.getBoundingClientRect();
  const fx = Math.min(Math.max((event.clientX - rect.left) / rect.width, 0), 1);
  const fy = Math.min(Math.max((event.clientY - rect.top) / rect.height, 0), 1);
  return { x: Math.round(fx * img.naturalWidth), y: Math.round(fy * img.naturalHeight) };
}
function drawGenBox(box = gen.box) {
  const el = $("gen-box"), img = $("gen-result");
  el.hidden = !box;
  if (!box) return;
  const [x0, y0, x1, y1] = box, w = img.naturalWidth, h = img.naturalHeight;
  Object.assign(el.style, { left: `${x0 / w * 100}%`, top: `${y0 / h * 100}%`, width: `${(x1 - x0) / w * 100}%`,
                            height: `${(y1 - y0) / h * 100}%` });
}
let genStart = null;
const genBoxOf = (a, b) => [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x), Math.max(a.y, b.y)];
$("gen-result-frame").addEventListener("pointerdown", (event) => {
  if (!gen.job || !$("gen-result").getAttribute("src") || event.button !== 0) return;
  genStart = genPoint(event);
  $("gen-result-frame").setPointerCapture(event.pointerId);
});
$("gen-result-frame").addEventListener("pointermove", (event) => {
  if (genStart) drawGenBox(genBoxOf(genStart, genPoint(event)));
});
$("gen-result-frame").addEventListener("pointerup", (event) => {
  if (!genStart) return;
  const box = genBoxOf(genStart, genPoint(event));
  genStart = null;
  if (box[2] - box[0] < 2 || box[3] - box[1] < 2) { drawGenBox(); return; }   // a click, not a box
  gen.box = box;
  drawGenBox();
  genReport();
});
$("gen-whole").addEventListener("click", () => { gen.box = null; drawGenBox(); genReport(); });
$("gen-run").addEventListener("click", generate);
$("gen-init-photo").addEventListener("click", () => { if (state.session) genInit(null); });
$("gen-init-input").addEventListener("change", () => {
  if ($("gen-init-input").files[0]) genInit($("gen-init-input").files[0]);
  $("gen-init-input").value = "";
});
$("gen-init-clear").addEventListener("click", () => showInit(null));

init();
