// The judging page's keyboard choice: ← picks Essay A, → picks Essay B and asks for a
// confirmation (Enter or Confirm submits, Escape or Cancel cancels). The choose buttons submit
// directly, with or without this script. Also tells the server how long the pair was shown.
"use strict";
(function () {
  const form = document.getElementById("verdict-form");
  if (!form) return;
  const shownAt = performance.now();
  const panel = document.getElementById("confirm-panel");
  const message = document.getElementById("confirm-message");
  const confirm = document.getElementById("confirm");
  const cancel = document.getElementById("cancel");
  const essays = { A: document.getElementById("essay-a"), B: document.getElementById("essay-b") };
  let chosen = null;

  function choose(letter) {
    chosen = letter;
    confirm.value = letter;
    message.textContent = "You chose Essay " + letter + " \u2014 press Enter or click Confirm";
    panel.hidden = false;
    for (const key of Object.keys(essays)) essays[key].classList.toggle("chosen", key === letter);
    confirm.focus();
  }

  function reset() {
    chosen = null;
    confirm.value = "";
    message.textContent = "";
    panel.hidden = true;
    for (const key of Object.keys(essays)) essays[key].classList.remove("chosen");
  }

  form.addEventListener("submit", function (event) {
    const submitter = event.submitter;
    if (submitter === confirm && !chosen) {
      event.preventDefault();
      return;
    }
    document.getElementById("shown-ms").value = String(Math.round(performance.now() - shownAt));
  });
  cancel.addEventListener("click", reset);
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.key === "ArrowLeft") {
      event.preventDefault();
      choose("A");
    } else if (event.key === "ArrowRight") {
      event.preventDefault();
      choose("B");
    } else if (event.key === "Escape" && chosen) {
      event.preventDefault();
      reset();
    } else if (event.key === "Enter" && chosen) {
      event.preventDefault();
      form.requestSubmit(confirm);
    }
  });
})();
