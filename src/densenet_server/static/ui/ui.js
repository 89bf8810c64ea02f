// The web page: choose or drop an image, preview it, POST it to /inference, show the top-5 as bars.
(function () {
  "use strict";
  const input = document.getElementById("file-input");
  const dropZone = document.getElementById("drop-zone");
  const result = document.getElementById("result");
  const preview = document.getElementById("preview");
  const status = document.getElementById("status");
  const labels = document.getElementById("labels");
  const warning = document.getElementById("warning");
  let previewUrl = null;

  function showLabels(answer) {
    labels.replaceChildren();
    for (const entry of answer.top_k) {
      const percent = (entry.probability * 100).toFixed(1) + "%";
      const item = document.createElement("li");
      item.className = "label";
      const line = document.createElement("div");
      line.className = "label-line";
      const name = document.createElement("span");
      name.className = "label-name";
      name.textContent = entry.label;
      const value = document.createElement("span");
      value.className = "label-percent";
      value.textContent = percent;
      line.append(name, value);
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = Math.max(entry.probability * 100, 0.5) + "%";
      bar.append(fill);
      item.append(line, bar);
      labels.append(item);
    }
    warning.hidden = !answer.warning;
    warning.textContent = answer.warning || "";
  }

  async function classify(file) {
    if (!file) return;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    result.hidden = false;
    labels.replaceChildren();
    warning.hidden = true;
    status.className = "";
    status.textContent = "Classifying " + file.name + "…";
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const response = await fetch("/inference?top_k=5", { method: "POST", body: form });
      const answer = await response.json();
      if (!response.ok) {
        status.className = "error";
        status.textContent = (answer.error && answer.error.message) || ("HTTP " + response.status);
        return;
      }
      status.textContent = file.name + ": " + answer["class"];
      showLabels(answer);
    } catch (error) {
      status.className = "error";
      status.textContent = "The server did not answer: " + error;
    }
  }

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
})();
