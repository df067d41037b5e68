// The pages' live parts: poll the service's JSON about every 2 s and rewrite what changed. Every
// string is written with textContent, never as markup. The team's token never reaches this script:
// the team's data comes from /team/data/..., which reads the HttpOnly cookie.
"use strict";

(function () {
  const POLL_MS = 2000;
  const LIVE_MS = 1000; // while a phase runs, its logs are asked for this often
  const FINAL = new Set(["evaluated", "withdrawn", "disqualified"]);
  const body = document.body;

  function live(text) {
    const line = document.getElementById("live");
    if (line) line.textContent = text;
  }

  // GET url every POLL_MS; apply(data) returns false to stop, or how many ms to wait instead. A 401
  // (signed out elsewhere, token rotated) stops too: the next page load shows the sign-in form.
  function poll(url, apply) {
    async function tick() {
      try {
        const answer = await fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
        if (answer.status === 401) {
          live("You are signed out: reload the page to sign in again.");
          return;
        }
        if (!answer.ok) throw new Error("status " + answer.status);
        live("");
        const next = apply(await answer.json());
        if (next === false) return;
        if (typeof next === "number") {
          setTimeout(tick, next);
          return;
        }
      } catch (error) {
        live("The service does not answer right now; trying again.");
      }
      setTimeout(tick, POLL_MS);
    }
    setTimeout(tick, POLL_MS);
  }

  // The same texts as the templates' filters (harness/service/pages.py).
  const when = (text) => (text || "").slice(0, 16).replace("T", " ");
  const score = (value) => (value === null || value === undefined ? "–" : Number(value).toFixed(5));
  const scores = (all) => Object.entries(all || {}).map(([name, value]) => name + " " + score(value)).join(", ");
  function state(view) {
    if (view.queue_position) return view.state + " #" + view.queue_position;
    return view.phase ? view.state + " " + view.phase : view.state;
  }

  function cell(row, field, text, kind) {
    const td = document.createElement("td");
    td.dataset.field = field;
    if (kind) td.className = kind;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function fill(scope, values) {
    for (const [field, text] of Object.entries(values)) {
      const node = scope.querySelector('[data-field="' + field + '"]');
      if (node && node.textContent !== text) node.textContent = text;
    }
  }

  // The columns after the score: the ones the served page's header names (harness/leaderboard/columns.py's
  // served_columns), each written as that module writes it: [text, CSS class].
  function column(entry, name) {
    if (name.startsWith("others.")) return [number((entry.others || {})[name.slice("others.".length)], 5), "num"];
    if (name === "interval") return [interval(entry.low, entry.high), "num"];
    if (name === "beats_next") return [beatsNext(entry.beats_next, entry.tied_with_next), entry.tied_with_next === true ? "num tied" : "num"];
    if (name === "used") return [used(entry.resources || {}), "note"];
    return ["", "num"];
  }

  function leaderboard(board) {
    const columns = [...document.querySelectorAll("th[data-column]")].map((th) => th.dataset.column);
    const rows = board.rows.map((entry) => {
      const tr = document.createElement("tr");
      cell(tr, "rank", entry.rank ? String(entry.rank) : "–");
      cell(tr, "team", entry.team, "team");
      cell(tr, "score", score(entry.score), "num");
      for (const name of columns) {
        const [text, kind] = column(entry, name);
        cell(tr, name, text, kind);
      }
      cell(tr, "submitted_at", when(entry.submitted_at), "num");
      return tr;
    });
    document.getElementById("board-rows").replaceChildren(...rows);
    document.getElementById("board-empty").hidden = rows.length > 0;
  }

  // The same texts as harness/leaderboard/columns.py (score_text, interval_text, beats_next_text, used_text):
  // what is not a number is blank.
  function number(value, places) {
    return typeof value === "number" ? value.toFixed(places) : "";
  }

  function interval(low, high) {
    return typeof low === "number" && typeof high === "number" ? "[" + low.toFixed(5) + ", " + high.toFixed(5) + "]" : "";
  }

  function beatsNext(share, tied) {
    if (typeof share !== "number") return "";
    return Math.round(share * 100) + "%" + (tied === true ? " tied" : "");
  }

  function bytes(value) {
    if (typeof value !== "number") return "";
    for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
      if (value >= size) return (value / size).toFixed(1) + " " + unit;
    }
    return value.toFixed(0) + " B";
  }

  function seconds(value) {
    return number(value, 1);
  }

  function used(r) {
    const parts = [
      ["train", seconds(r.train_wall_s), " s"],
      ["infer", seconds(r.infer_wall_s), " s"],
      ["CPU", seconds(r.cpu_s), " s"],
      ["memory", bytes(r.peak_memory_bytes), ""],
      ["GPU", seconds(r.gpu_s), " s"],
      ["GPU memory", bytes(r.peak_gpu_memory_bytes), ""],
    ];
    return parts.filter(([, text]) => text).map(([label, text, unit]) => label + " " + text + unit).join(" · ");
  }

  function submissions(data) {
    const rows = data.submissions.map((view) => {
      const tr = document.createElement("tr");
      tr.dataset.id = view.id;
      const link = document.createElement("a");
      link.href = "/team/submissions/" + encodeURIComponent(view.id);
      link.textContent = view.id;
      cell(tr, "id", "", "num").appendChild(link);
      cell(tr, "submitted_at", when(view.submitted_at), "num");
      cell(tr, "message", view.message, "note");
      cell(tr, "state", state(view));
      cell(tr, "verdict", view.verdict || "");
      cell(tr, "verdict_message", view.verdict_message || "", "note");
      cell(tr, "public_scores", scores(view.public_scores), "num");
      return tr;
    });
    document.getElementById("submissions").replaceChildren(...rows);
    document.getElementById("none-yet").hidden = rows.length > 0;
  }

  function submission(data) {
    const view = data.submission;
    fill(document.getElementById("submission"), {
      state: state(view),
      verdict: view.verdict || "",
      failed_phase: view.failed_phase || "",
      verdict_message: view.verdict_message || "",
      public_scores: scores(view.public_scores),
    });
    let running = false;
    for (const [phase, logs] of Object.entries(data.logs)) {
      const section = document.querySelector('[data-phase="' + phase + '"]');
      if (!section) continue;
      running = running || Boolean(logs && logs.running);
      fill(section, { note: logsNote(phase, view, logs), stdout: logs ? logs.stdout : "", stderr: logs ? logs.stderr : "" });
    }
    if (FINAL.has(view.state)) return false;
    return running ? LIVE_MS : POLL_MS;
  }

  // The same text as the template's note (templates/submission.html).
  function logsNote(phase, view, logs) {
    if (logs === null) return "The " + phase + " phase " + (phase in (view.phases || {}) ? "left no logs." : "has not run (yet).");
    const notes = [];
    if (logs.running) notes.push("Running: its logs grow as lines arrive.");
    if (logs.truncated) notes.push("Only the head and the tail of each stream are kept.");
    return notes.join(" ");
  }

  const apply = { leaderboard: leaderboard, team: submissions, submission: submission }[body.dataset.page];
  if (apply && body.dataset.poll) poll(body.dataset.poll, apply);
})();
