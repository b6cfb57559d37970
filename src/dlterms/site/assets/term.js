// On a served site, offer to run this term's experiment: one job at a time on the server. With
// declared parameters, a form runs it with other values; that run's checks and figures are shown
// beside the default run (which stays as it is: non-default runs are saved apart).
(function () {
  "use strict";
  if (location.protocol !== "http:" && location.protocol !== "https:") return;
  var article = document.querySelector("article.term");
  var button = document.getElementById("run-button");
  var status = document.getElementById("run-status");
  var form = document.getElementById("run-form");
  var custom = document.getElementById("custom-result");
  if (!article || !button) return;
  var term = article.getAttribute("data-term");
  var api = "../api/";

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function showCustom(job) {
    if (!custom) return;
    custom.textContent = "";
    var head = el("p", null, "status " + job.status);
    head.appendChild(el("span", "non-default parameters", "badge nondefault"));
    head.appendChild(document.createTextNode(" " + (job.changed || "") + ": " + job.message));
    custom.appendChild(head);
    var table = el("table", null, "checks");
    var tbody = el("tbody");
    (job.checks || []).forEach(function (c) {
      var tr = el("tr", null, c.passed ? "pass" : "fail");
      tr.appendChild(el("td", c.claim));
      tr.appendChild(el("td", typeof c.observed === "object" ? JSON.stringify(c.observed) : c.observed));
      tr.appendChild(el("td", c.expected));
      tr.appendChild(el("td", c.passed ? "yes" : "NO"));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    custom.appendChild(table);
    (job.figures || []).forEach(function (src) {
      var fig = el("figure");
      var img = el("img");
      img.src = "../" + src + "?t=" + Date.now();
      img.alt = "figure of the run with " + (job.changed || "other parameters");
      fig.appendChild(img);
      fig.appendChild(el("figcaption", "with " + (job.changed || "other parameters")));
      custom.appendChild(fig);
    });
    custom.hidden = false;
  }

  function poll() {
    fetch(api + "status").then(function (r) { return r.json(); }).then(function (s) {
      var job = s.job;
      var mine = sessionStorage.getItem("dlterms-run") === term;
      if (job && job.state === "running") {
        button.disabled = true;
        if (form) form.querySelector("button").disabled = true;
        status.textContent = (job.term === term ? "Running" : "Busy running " + job.term) +
          (job.changed ? " (" + job.changed + ")" : "") +
          ": " + Math.round(100 * (job.fraction || 0)) + "% " + (job.message || "");
        setTimeout(poll, 500);
      } else {
        button.disabled = false;
        if (form) form.querySelector("button").disabled = false;
        if (job && job.term === term && job.state === "done" && mine) {
          sessionStorage.removeItem("dlterms-run");
          if (job.default === false) {
            status.textContent = "Done: " + job.message;
            showCustom(job);
          } else {
            location.reload();
          }
        } else if (job && job.term === term && job.state === "error") {
          status.textContent = "The run failed: " + (job.message || "");
        }
      }
    }).catch(function () { status.textContent = "Lost contact with the server."; });
  }

  function start(config) {
    button.disabled = true;
    var body = { term: term };
    if (config) body.config = config;
    fetch(api + "run", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (d) { return { code: r.status, data: d }; }); })
      .then(function (res) {
        if (res.code === 202) { sessionStorage.setItem("dlterms-run", term); status.textContent = "Started."; }
        else { status.textContent = res.data.error || ("Refused (" + res.code + ")"); }
        poll();
      });
  }

  fetch(api + "status").then(function (r) {
    if (!r.ok) return;
    button.hidden = false;
    button.addEventListener("click", function () { start(null); });
    if (form) {
      form.hidden = false;
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var config = {};
        Array.prototype.forEach.call(form.querySelectorAll("input[name]"), function (input) {
          config[input.name] = input.getAttribute("data-type") === "bool" ? (input.checked ? "true" : "false") : input.value;
        });
        start(config);
      });
    }
    poll();
  }).catch(function () { /* not served by dlterms serve */ });
})();
