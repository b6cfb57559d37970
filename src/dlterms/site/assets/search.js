// Instant search over the glossary. Opened from disk it ranks by keywords in the page's own index;
// served by `dlterms serve` it also asks /api/search, which ranks terms by meaning.
(function () {
  "use strict";
  var index = window.DLTERMS_INDEX || [];
  var box = document.getElementById("search");
  var list = document.getElementById("results");
  var note = document.getElementById("search-note");
  var served = location.protocol === "http:" || location.protocol === "https:";
  var pending = null;
  var byId = {};
  index.forEach(function (e) { byId[e.id] = e; });
  var STOP = new Set("a an and are as at be by can do does for from how i in is it its my of on or the to what when where which why with you your this that".split(" "));

  function words(text) {
    return (text.toLowerCase().match(/[a-z0-9]+/g) || []).filter(function (w) { return !STOP.has(w); });
  }

  function localSearch(query) {
    var q = words(query);
    var whole = query.trim().toLowerCase();
    var hits = [];
    index.forEach(function (e) {
      var keywords = e.keywords || [];
      var names = (e.title + " " + e.aliases.join(" ") + " " + keywords.join(" ") + " " + e.id.replace(/-/g, " ")).toLowerCase();
      var body = ((e.does || "") + " " + e.text).toLowerCase();
      var score = 0;
      q.forEach(function (w) {
        if (names.indexOf(w) >= 0) score += 3;
        else if (body.indexOf(w) >= 0) score += 1;
      });
      var isName = function (a) { return a.toLowerCase() === whole; };
      if (e.title.toLowerCase() === whole || e.id === whole || e.aliases.some(isName) || keywords.some(isName)) score += 100;
      if (score > 0) hits.push({ id: e.id, title: e.title, summary: e.summary, score: score });
    });
    hits.sort(function (a, b) { return b.score - a.score || a.id.localeCompare(b.id); });
    return hits.slice(0, 10);
  }

  function show(hits, how) {
    list.textContent = "";
    hits.forEach(function (h) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "terms/" + encodeURIComponent(h.id) + ".html";
      a.textContent = h.title;
      a.className = "result-link";
      li.appendChild(a);
      var s = document.createElement("span");
      s.className = "summary";
      // The page's own index carries the summary rendered at build time (escaped Markdown, MathML).
      var known = byId[h.id];
      if (known && known.summary_html) s.innerHTML = known.summary_html;
      else s.textContent = h.summary || "";
      li.appendChild(s);
      list.appendChild(li);
    });
    note.textContent = box.value.trim() ? (hits.length ? how : "No term matches.") : "";
  }

  function onInput() {
    var query = box.value;
    if (!query.trim()) { show([], ""); return; }
    show(localSearch(query), "Keyword matches.");
    if (!served) return;
    if (pending) clearTimeout(pending);
    pending = setTimeout(function () {
      fetch("api/search?q=" + encodeURIComponent(query) + "&limit=10")
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          if (box.value !== query) return;
          show(data.hits, data.mode === "semantic" ? "Ranked by meaning." : "Keyword matches (" + (data.notice || "model unavailable") + ").");
        })
        .catch(function () { /* keep the local results */ });
    }, 200);
  }

  box.addEventListener("input", onInput);
  if (box.value) onInput();
})();
