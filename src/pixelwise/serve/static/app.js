"use strict";
// The page of `pixelwise serve`: reads /model once, sends a chosen or dropped image to
// /predict?format=json&overlay=true and shows the overlay beside the original, each class's area, the time
// taken and links to the PNGs. Everything comes from this server: nothing else is loaded.

const $ = (id) => document.getElementById(id);
const MAX_BUSY_RETRIES = 5;
let model = null;
let downloads = []; // object URLs of the last result, released when the next one comes

function rgb(color) {
  return `rgb(${color[0]}, ${color[1]}, ${color[2]})`;
}

function swatch(color) {
  const box = document.createElement("span");
  box.className = "swatch";
  box.style.backgroundColor = rgb(color);
  return box;
}

// a class's colour and name, side by side
function labelled(item) {
  const label = document.createElement("span");
  label.className = "class-label";
  label.append(swatch(item.color), document.createTextNode(item.name));
  return label;
}

function megabytes(bytes) {
  return `${(bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0)} MB`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function setBusy(text, fraction) {
  $("busy").hidden = false;
  $("status").textContent = text;
  const bar = $("progress");
  if (fraction === null) {
    bar.removeAttribute("value"); // indeterminate: the server is working
  } else {
    bar.value = fraction;
  }
}

async function loadModel() {
  try {
    const answer = await fetch("/model");
    if (!answer.ok) throw new Error(`GET /model answered ${answer.status}`);
    model = await answer.json();
  } catch (error) {
    $("model-line").textContent = `Cannot read the model from the server (${error.message}).`;
    return;
  }
  const names = model.classes.map((item) => item.name).join(", ");
  $("model-line").textContent =
    `Model ${model.name} (${model.backend}, ${model.in_channels} input channel${model.in_channels === 1 ? "" : "s"}): ` +
    `${model.classes.length} classes — ${names}.`;
  const legend = $("legend");
  legend.replaceChildren();
  for (const item of model.classes) {
    const entry = document.createElement("li");
    entry.append(labelled(item));
    legend.append(entry);
  }
  const limits = model.limits;
  $("limits").textContent =
    `PNG, JPEG, TIFF or BMP · up to ${megabytes(limits.max_upload_bytes)} and ` +
    `${(limits.max_pixels / 1e6).toFixed(1)} megapixels`;
  for (const [id, low, high, value] of [
    ["tile", limits.tile[0], limits.tile[1], model.tile_size],
    ["overlap", limits.overlap[0], limits.overlap[1], model.overlap],
  ]) {
    const input = $(id);
    input.min = low;
    input.max = high;
    input.placeholder = String(value);
  }
  $("tta").checked = model.tta;
}

function query() {
  const parameters = new URLSearchParams({ format: "json", overlay: "true" });
  for (const id of ["tile", "overlap"]) {
    const value = $(id).value.trim();
    if (value !== "") parameters.set(id, value);
  }
  if (model && $("tta").checked !== model.tta) parameters.set("tta", String($("tta").checked));
  return parameters.toString();
}

// POST the file with upload progress (fetch has none); resolves to {status, body, retryAfter}
function send(file) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    const form = new FormData();
    form.append("image", file, file.name);
    request.open("POST", `/predict?${query()}`);
    request.responseType = "json";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) setBusy(`Uploading ${file.name}…`, event.loaded / event.total);
    };
    let started = null;
    let ticker = null;
    request.upload.onload = () => {
      started = performance.now();
      const tick = () => setBusy(`Segmenting… ${((performance.now() - started) / 1000).toFixed(1)} s`, null);
      tick();
      ticker = setInterval(tick, 100);
    };
    request.onload = () => {
      clearInterval(ticker);
      resolve({
        status: request.status,
        body: request.response,
        retryAfter: Number(request.getResponseHeader("Retry-After") || "1"),
      });
    };
    request.onerror = () => {
      clearInterval(ticker);
      reject(new Error("the connection to the server failed"));
    };
    request.send(form);
  });
}

function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

function pngUrl(base64) {
  const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  downloads.push(url);
  return url;
}

function showImage(image, url) {
  image.onload = () => image.classList.toggle("small", image.naturalWidth < 320);
  image.src = url;
}

function showResult(file, result, seconds) {
  for (const url of downloads) URL.revokeObjectURL(url);
  downloads = [];
  const stem = file.name.replace(/\.[^.]*$/, "") || "image";
  const original = URL.createObjectURL(file);
  downloads.push(original);
  $("original-caption").textContent = `Original — ${file.name}, ${result.width} × ${result.height}`;
  $("original").onerror = () => {
    $("original-caption").textContent = `Original — ${file.name}: this browser cannot show the format; the prediction shows it`;
  };
  showImage($("original"), original);
  const overlay = pngUrl(result.overlay_png);
  showImage($("overlay"), overlay);
  const mask = pngUrl(result.mask_png);
  $("download-mask").href = mask;
  $("download-mask").download = `${stem}_mask.png`;
  $("download-overlay").href = overlay;
  $("download-overlay").download = `${stem}_overlay.png`;

  const rows = $("areas").tBodies[0];
  rows.replaceChildren();
  for (const item of result.classes) {
    const row = rows.insertRow();
    row.insertCell().append(labelled(item));
    row.insertCell().textContent = item.pixels.toLocaleString("en-US");
    row.insertCell().textContent = `${item.percent.toFixed(2)} %`;
  }
  const timing = result.seconds;
  const server = timing.queued + timing.decode + timing.predict + timing.encode;
  $("timing").textContent =
    `Took ${seconds.toFixed(2)} s in all; on the server ${server.toFixed(2)} s ` +
    `(waiting ${timing.queued.toFixed(2)}, decoding ${timing.decode.toFixed(2)}, ` +
    `predicting ${timing.predict.toFixed(2)}, encoding ${timing.encode.toFixed(2)}). ` +
    `Tile ${result.tile_size}, overlap ${result.overlap}${result.tta ? ", with flips" : ""}.`;
  $("result").hidden = false;
}

async function segment(file) {
  $("error").hidden = true;
  if (model && file.size > model.limits.max_upload_bytes) {
    showError(`${file.name} is ${megabytes(file.size)}, over this server's limit of ${megabytes(model.limits.max_upload_bytes)}.`);
    return;
  }
  const input = $("file");
  input.disabled = true;
  const started = performance.now();
  try {
    for (let attempt = 0; ; attempt += 1) {
      setBusy(`Uploading ${file.name}…`, 0);
      const answer = await send(file);
      if (answer.status === 503 && attempt < MAX_BUSY_RETRIES) {
        const wait = Math.max(1, answer.retryAfter);
        setBusy(`The server is busy; trying again in ${wait} s…`, null);
        await sleep(wait);
        continue;
      }
      if (answer.status !== 200) {
        const message = answer.body && answer.body.error ? answer.body.error : `the server answered ${answer.status}`;
        throw new Error(message);
      }
      showResult(file, answer.body, (performance.now() - started) / 1000);
      break;
    }
  } catch (error) {
    showError(error.message);
  } finally {
    $("busy").hidden = true;
    input.disabled = false;
    input.value = ""; // choosing the same file again is a new request
  }
}

function setUp() {
  const drop = $("drop");
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) segment(file);
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) segment(file);
  });
  // a file dropped beside the target must not make the browser leave the page to show it
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  loadModel();
}

setUp();
