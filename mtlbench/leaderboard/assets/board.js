// Sortable, filterable board tables; each entry row may be followed by its details row, which
// moves with it. No network, no library: the page works opened from disk.
(function () {
  "use strict";

  function entryRows(body) {
    return Array.from(body.children).filter(function (row) { return row.classList.contains("entry"); });
  }

  function cellValue(row, index) {
    var cell = row.children[index];
    var raw = cell ? cell.getAttribute("data-value") : null;
    return raw === null ? (cell ? cell.textContent.trim() : "") : raw;
  }

  function compare(a, b, numeric) {
    if (a === "" && b === "") { return 0; }
    if (a === "") { return 1; }  // undefined values last, whichever the direction
    if (b === "") { return -1; }
    return numeric ? Number(a) - Number(b) : a.localeCompare(b);
  }

  function sortTable(table, index, descending) {
    var body = table.tBodies[0];
    var header = table.tHead.rows[0].cells[index];
    var numeric = header.getAttribute("data-type") === "number";
    var rows = entryRows(body).map(function (row, order) {
      var details = row.nextElementSibling && row.nextElementSibling.classList.contains("details") ? row.nextElementSibling : null;
      return { row: row, details: details, value: cellValue(row, index), order: order };
    });
    rows.sort(function (x, y) {
      var blank = (x.value === "") - (y.value === "");
      if (blank !== 0) { return blank; }
      var result = compare(x.value, y.value, numeric);
      return (descending ? -result : result) || x.order - y.order;
    });
    rows.forEach(function (item) {
      body.appendChild(item.row);
      if (item.details) { body.appendChild(item.details); }
    });
    Array.from(table.tHead.rows[0].cells).forEach(function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function filterTable(table, text) {
    var needle = text.trim().toLowerCase();
    entryRows(table.tBodies[0]).forEach(function (row) {
      var shown = !needle || row.textContent.toLowerCase().indexOf(needle) !== -1;
      row.hidden = !shown;
      var details = row.nextElementSibling;
      if (details && details.classList.contains("details") && !shown) { details.hidden = true; }
    });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.from(table.tHead.rows[0].cells).forEach(function (header, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (header.firstChild) { button.appendChild(header.firstChild); }
      header.appendChild(button);
      button.addEventListener("click", function () {
        // first click: numbers best (highest) first, text A to Z; then each click reverses
        var current = header.getAttribute("aria-sort");
        var descending = current ? current === "ascending" : header.getAttribute("data-type") === "number";
        sortTable(table, index, descending);
      });
    });
  });

  document.querySelectorAll("input.filter").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    input.addEventListener("input", function () { filterTable(table, input.value); });
  });

  document.querySelectorAll("button.expand").forEach(function (button) {
    button.addEventListener("click", function () {
      var details = document.getElementById(button.getAttribute("aria-controls"));
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", open ? "false" : "true");
      details.hidden = open;
    });
  });
})();
