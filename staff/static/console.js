// The staff console's only script: answer search, live character counts,
// retraining progress. Pages work without it (a reload shows the progress).
"use strict";

function fillFacts(text, facts) {
  return text.replace(/{(\w+)}/g, (whole, name) => (name in facts ? facts[name] : whole));
}

function setUpSearch() {
  const search = document.getElementById("answer-search");
  if (!search) return;
  search.addEventListener("input", () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    document.querySelectorAll(".answer-option").forEach((option) => {
      const text = (option.textContent + " " + (option.dataset.search || "")).toLowerCase();
      option.hidden = !words.every((word) => text.includes(word));
    });
  });
}

function setUpCounters() {
  document.querySelectorAll("textarea[data-facts]").forEach((area) => {
    const facts = JSON.parse(area.dataset.facts || "{}");
    const counter = area.form.querySelector(`[data-count-for="${area.name}"]`);
    if (!counter) return;
    const max = Number(document.body.dataset.maxAnswer || 600);
    const update = () => {
      const length = fillFacts(area.value, facts).length;
      const messages = Math.max(1, Math.ceil(length / 320));
      counter.textContent = `${length} characters with the clinic's details filled in · ` +
        `${length <= 320 ? "fits one text message (aim: 320)" : `about ${messages} text messages (aim: 320 each, 1,600 at most)`} · ` +
        `at most ${max}`;
      counter.className = "counter " + (length > max ? "over" : length > 320 ? "long" : "ok");
    };
    area.addEventListener("input", update);
    update();
  });
  document.querySelectorAll("textarea[data-count-lines]").forEach((area) => {
    const counter = area.form.querySelector(`[data-lines-for="${area.name}"]`);
    const needed = Number(area.dataset.countLines);
    const update = () => {
      const lines = new Set(area.value.split("\n").map((l) => l.trim().toLowerCase()).filter(Boolean)).size;
      counter.textContent = `${lines} different phrasings (at least ${needed})`;
      counter.className = "counter " + (lines < needed ? "over" : "ok");
    };
    area.addEventListener("input", update);
    update();
  });
}

function setUpBusyForms() {
  document.querySelectorAll("form[data-busy], form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      form.querySelectorAll("button").forEach((button) => (button.disabled = true));
      if (form.dataset.busy) {
        const note = document.createElement("p");
        note.className = "flash";
        note.textContent = form.dataset.busy;
        form.appendChild(note);
      }
    });
  });
}

function setUpJob() {
  const job = document.getElementById("job");
  if (!job || job.dataset.running !== "true") return;
  const log = document.getElementById("job-log");
  let logLength = Number(job.dataset.logLength || 0);
  const poll = async () => {
    let state;
    try {
      const reply = await fetch(`/retrain/${job.dataset.job}/state?since=${logLength}`, { credentials: "same-origin" });
      if (!reply.ok) throw new Error(reply.status);
      state = await reply.json();
    } catch (error) {
      setTimeout(poll, 3000);
      return;
    }
    document.getElementById("job-progress").value = state.progress;
    document.getElementById("job-percent").textContent = `${Math.round(state.progress)}%`;
    document.getElementById("job-stage").textContent = state.stage;
    if (state.log.length) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
      log.textContent += (log.textContent ? "\n" : "") + state.log.join("\n");
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    logLength = state.log_length;
    const checks = new Map(state.checks.map((c) => [c.name, c]));
    if (state.status === "training" || state.status === "gating") {
      if (state.checks.length && !document.querySelector("tr.check")) {
        window.location.reload();  // the checks table appears once the gate starts
        return;
      }
      document.querySelectorAll("tr.check").forEach((row) => {
        const check = checks.get(row.dataset.check);
        if (!check || check.passed === null) return;
        const cell = row.querySelector(".result");
        cell.textContent = check.passed ? "passed" : "FAILED";
        cell.className = "result " + (check.passed ? "passed" : "failed");
        row.cells[2].textContent = check.summary;
      });
      setTimeout(poll, 1500);
    } else {
      window.location.reload();  // finished: show the result and the Publish button
    }
  };
  setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpSearch();
  setUpCounters();
  setUpBusyForms();
  setUpJob();
});
