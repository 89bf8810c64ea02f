// The web page: choose or drop an image, preview it, POST it to /inference, show the top-5 as bars. When
// the server serves several models (GET /'s `models`), a list chooses the one that answers. When it needs
// an API key (GET /'s `auth` is "bearer", or an upload is answered 401), the page asks for one, keeps it
// in sessionStorage (this tab only, gone when it closes) and sends it with every call.
(function () {
  "use strict";
  const input = document.getElementById("file-input");
  const dropZone = document.getElementById("drop-zone");
  const result = document.getElementById("result");
  const preview = document.getElementById("preview");
  const status = document.getElementById("status");
  const labels = document.getElementById("labels");
  const chosenLabels = document.getElementById("chosen-labels");
  const warning = document.getElementById("warning");
  const modelChoice = document.getElementById("model-choice");
  const modelSelect = document.getElementById("model-select");
  const modelHint = document.getElementById("model-hint");
  const docsLink = document.getElementById("docs-link");
  const keyForm = document.getElementById("key-form");
  const keyInput = document.getElementById("api-key");
  const keyHint = document.getElementById("key-hint");
  const KEY_STORAGE = "densenet-api-key";
  let previewUrl = null;
  let served = [];
  let currentFile = null;  // classified again when another model is chosen

  function authorization() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    return key ? { Authorization: "Bearer " + key } : {};
  }

  function askForKey(hint) {
    keyHint.textContent = hint;
    keyForm.hidden = false;
    keyInput.focus();
  }

  function describe(model) {
    const facts = [model.architecture];
    if (model.classes !== null) facts.push(model.classes + " classes");  // null while it loads
    if (model.multi_label) facts.push("multi-label");
    return model.name + " (" + facts.join(", ") + ")";
  }

  function showModelHint() {
    const model = served.find((each) => each.name === modelSelect.value) || served[0];
    modelHint.textContent = model ? "Model: " + describe(model) + "." : "";
  }

  async function loadModels() {
    try {
      const response = await fetch("/");  // open: it says whether the other routes need a key
      const about = await response.json();
      served = about.models || [];
      if (about.auth === "bearer") {
        docsLink.hidden = true;  // a browser cannot send the key when it opens a link
        if (!sessionStorage.getItem(KEY_STORAGE)) askForKey("This server needs an API key.");
      }
    } catch (error) {
      served = [];  // the page still works: uploads go to the default model
    }
    modelSelect.replaceChildren(...served.map((model) => new Option(describe(model), model.name)));
    // One model needs no choice, and its uploads keep the plain URL.
    modelChoice.hidden = served.length < 2;
    showModelHint();
  }

  function percentOf(probability) {
    return (probability * 100).toFixed(1) + "%";
  }

  function showMultiLabels(answer) {
    // A multi-label model's answer: every class at or above its threshold (maybe none).
    chosenLabels.hidden = !answer.labels;
    if (!answer.labels) return;
    const names = answer.labels.map((entry) => entry.label + " " + percentOf(entry.probability));
    chosenLabels.textContent = names.length
      ? "Labels at or above " + percentOf(answer.threshold) + ": " + names.join(", ")
      : "No label reaches " + percentOf(answer.threshold);
  }

  function showLabels(answer) {
    labels.replaceChildren();
    for (const entry of answer.top_k) {
      const item = document.createElement("li");
      item.className = "label";
      const line = document.createElement("div");
      line.className = "label-line";
      const name = document.createElement("span");
      name.className = "label-name";
      name.textContent = entry.label;
      const value = document.createElement("span");
      value.className = "label-percent";
      value.textContent = percentOf(entry.probability);
      line.append(name, value);
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = Math.max(entry.probability * 100, 0.5) + "%";
      bar.append(fill);
      item.append(line, bar);
      labels.append(item);
    }
    showMultiLabels(answer);
    warning.hidden = !answer.warning;
    warning.textContent = answer.warning || "";
  }

  function inferenceUrl() {
    const query = new URLSearchParams({ top_k: "5" });
    if (!modelChoice.hidden) query.set("model", modelSelect.value);
    return "/inference?" + query;
  }

  async function classify(file) {
    if (!file) return;
    currentFile = file;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    result.hidden = false;
    labels.replaceChildren();
    chosenLabels.hidden = true;
    warning.hidden = true;
    status.className = "";
    status.textContent = "Classifying " + file.name + "…";
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const response = await fetch(inferenceUrl(), { method: "POST", body: form, headers: authorization() });
      const answer = await response.json();
      if (response.status === 401) {
        // No key, or one the server no longer accepts (rotated): ask again; the image is sent once one is given.
        sessionStorage.removeItem(KEY_STORAGE);
        askForKey((answer.error && answer.error.message) || "This server needs an API key.");
        status.className = "error";
        status.textContent = "Enter an API key to classify " + file.name + ".";
        return;
      }
      if (!response.ok) {
        status.className = "error";
        status.textContent = (answer.error && answer.error.message) || ("HTTP " + response.status);
        return;
      }
      status.textContent = file.name + ": " + answer["class"] + " (" + answer.model + ")";
      showLabels(answer);
    } catch (error) {
      status.className = "error";
      status.textContent = "The server did not answer: " + error;
    }
  }

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    keyInput.value = "";
    keyForm.hidden = true;
    if (currentFile) classify(currentFile);
  });
  modelSelect.addEventListener("change", () => {
    showModelHint();
    if (currentFile) classify(currentFile);
  });
  input.addEventListener("change", () => classify(input.files[0]));
  for (const kind of ["dragenter", "dragover"]) {
    dropZone.addEventListener(kind, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  }
  for (const kind of ["dragleave", "drop"]) {
    dropZone.addEventListener(kind, () => dropZone.classList.remove("dragging"));
  }
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    classify(event.dataTransfer.files[0]);
  });
  loadModels();
})();
