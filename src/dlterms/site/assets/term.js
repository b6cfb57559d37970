// On a served site, offer to run this term's experiment: one job at a time on the server.
(function () {
  "use strict";
  if (location.protocol !== "http:" && location.protocol !== "https:") return;
  var article = document.querySelector("article.term");
  var button = document.getElementById("run-button");
  var status = document.getElementById("run-status");
  if (!article || !button) return;
  var term = article.getAttribute("data-term");
  var api = "../api/";

  function poll() {
    fetch(api + "status").then(function (r) { return r.json(); }).then(function (s) {
      var job = s.job;
      if (job && job.state === "running") {
        button.disabled = true;
        status.textContent = (job.term === term ? "Running" : "Busy running " + job.term) +
          ": " + Math.round(100 * (job.fraction || 0)) + "% " + (job.message || "");
        setTimeout(poll, 500);
      } else {
        button.disabled = false;
        if (job && job.term === term && job.state === "done" && sessionStorage.getItem("dlterms-run") === term) {
          sessionStorage.removeItem("dlterms-run");
          location.reload();
        } else if (job && job.term === term && job.state === "error") {
          status.textContent = "The run failed: " + (job.message || "");
        }
      }
    }).catch(function () { status.textContent = "Lost contact with the server."; });
  }

  fetch(api + "status").then(function (r) {
    if (!r.ok) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(api + "run", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ term: term }) })
        .then(function (r) { return r.json().then(function (d) { return { code: r.status, data: d }; }); })
        .then(function (res) {
          if (res.code === 202) { sessionStorage.setItem("dlterms-run", term); status.textContent = "Started."; }
          else { status.textContent = res.data.error || ("Refused (" + res.code + ")"); }
          poll();
        });
    });
    poll();
  }).catch(function () { /* not served by dlterms serve */ });
})();
