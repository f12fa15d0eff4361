// The rules tab: a rule just added moves from the top (where its editor opened) to where it sorts, marked
// "new", so the table stays in the order its header says. Loaded by templates/plans/rules.html only.
(function () {
  "use strict";

  // The same order as the view's RULE_SORTS: code or priority first (ascending or not), then the other, then id.
  function key(body) {
    var row = body.querySelector("tr[data-id]");
    var data = row ? row.dataset : {};
    return {
      code: data.code || "",
      priority: parseInt(data.priority, 10) || 0,
      id: parseInt(data.id, 10) || 0,
    };
  }

  function compare(a, b, sort) {
    var field = sort.replace(/^-/, "");
    var sign = sort.charAt(0) === "-" ? -1 : 1;
    var other = field === "code" ? "priority" : "code";
    var first = a[field] < b[field] ? -1 : a[field] > b[field] ? 1 : 0;
    if (first) return sign * first;
    var second = a[other] < b[other] ? -1 : a[other] > b[other] ? 1 : 0;
    return second || a.id - b.id;
  }

  function place(body) {
    var table = body.closest("table.rules");
    if (!table || !table.dataset.sort) return;
    var mine = key(body);
    var rows = table.querySelectorAll("tbody.rule:not(.editing)");
    var before = null;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i] === body) continue;
      if (compare(mine, key(rows[i]), table.dataset.sort) < 0) { before = rows[i]; break; }
    }
    if (before) {
      table.insertBefore(body, before);
    } else {
      var last = rows.length ? rows[rows.length - 1] : null;
      if (last && last !== body) last.after(body);
    }
    body.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var elt = event.detail.elt;
    var fresh = elt && elt.matches && elt.matches("tbody.rule.new") ? [elt] : [];
    if (!fresh.length) {
      fresh = Array.prototype.slice.call(document.querySelectorAll("tbody.rule.new:not([data-placed])"));
    }
    fresh.forEach(function (body) {
      if (body.dataset.placed) return;
      body.dataset.placed = "1";
      place(body);
    });
  });
})();
