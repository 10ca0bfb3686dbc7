// The viewer's few behaviours: the candidate-path toggle, copy buttons for fork commands,
// and keyboard shortcuts (j/k next/previous, a/r/f accept/reject/flag, n the note, Esc
// out of a field). Written for this
// project; no library.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.getElementById("show-all-paths");
  if (toggle) {
    toggle.addEventListener("change", () => {
      document.getElementById("graph-all").hidden = !toggle.checked;
      document.getElementById("graph-pruned").hidden = toggle.checked;
    });
  }

  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => {
      const command = button.parentElement.querySelector(".fork-command").textContent;
      navigator.clipboard.writeText(command).then(
        () => { button.textContent = "copied"; },
        () => { button.textContent = "select and copy"; },
      );
    });
  }

  const keys = { a: "review-accept", r: "review-reject", f: "review-flag" };
  const links = { j: "next", k: "previous" };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
    if (typing) {
      if (event.key === "Escape") target.blur();  // back to the shortcuts
      return;
    }
    const note = document.getElementById("review-note");
    if (event.key === "n" && note) {
      event.preventDefault();
      note.focus();
      return;
    }
    const button = keys[event.key] && document.getElementById(keys[event.key]);
    const link = links[event.key] && document.getElementById(links[event.key]);
    if (button) {
      event.preventDefault();
      button.click();
    } else if (link) {
      event.preventDefault();
      window.location.href = link.href;
    }
  });
});
