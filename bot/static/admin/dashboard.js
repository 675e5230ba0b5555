/*
 * The supervisors' dashboard: draws each chart from the table under it.
 *
 * The table is the source of truth (and the whole dashboard without
 * JavaScript): every chart reads its labels from the table's row headers and
 * its numbers from the cells' data-value attributes, so a chart can never
 * show something the table does not. Suppressed cells ("fewer than 5") have
 * no value and leave a gap. Once a chart is drawn its table folds away under
 * "Table: ...", one keypress from any keyboard or screen reader user.
 */
(function () {
  "use strict";

  // GOV.UK Design System colours, distinguishable in print and for most colour vision.
  var COLOURS = ["#1d70b8", "#d4351c", "#00703c", "#f47738", "#4c2c92", "#505a5f"];
  var MOST_BARS = 15;

  function columns(table) {
    return Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return { key: th.getAttribute("data-key"), label: th.textContent.trim() };
    });
  }

  function readTable(table, wanted) {
    var heads = columns(table);
    var indexes = wanted.map(function (key) {
      for (var i = 0; i < heads.length; i += 1) {
        if (heads[i].key === key) { return i; }
      }
      return -1;
    }).filter(function (i) { return i > 0; });
    var labels = [];
    var series = indexes.map(function (i) { return { label: heads[i].label, data: [] }; });
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (row) {
      var cells = row.children;
      labels.push(cells[0].textContent.trim());
      indexes.forEach(function (column, n) {
        var raw = cells[column] ? cells[column].getAttribute("data-value") : "";
        series[n].data.push(raw === "" || raw === null ? null : Number(raw));
      });
    });
    return { labels: labels, series: series };
  }

  function draw(box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    var canvas = box.querySelector("canvas");
    if (!table || !canvas || typeof window.Chart === "undefined") { return; }
    var kind = box.getAttribute("data-chart");
    var unit = box.getAttribute("data-unit");
    var data = readTable(table, (box.getAttribute("data-series") || "").split(","));
    var bars = kind === "bar";
    if (bars && data.labels.length > MOST_BARS) {
      data.labels = data.labels.slice(0, MOST_BARS);
      data.series.forEach(function (s) { s.data = s.data.slice(0, MOST_BARS); });
      var note = document.createElement("p");
      note.className = "govuk-body-s dashboard-note";
      note.textContent = "The chart shows the first " + MOST_BARS + " rows; the table has them all.";
      box.appendChild(note);
    }
    box.hidden = false;
    if (bars) { box.classList.add("dashboard-chart--bars-" + Math.max(data.labels.length, 3)); }
    new window.Chart(canvas, {
      type: kind === "line" ? "line" : "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (s, n) {
          return {
            label: s.label + (unit === "minutes" ? " (minutes)" : ""),
            data: s.data,
            backgroundColor: COLOURS[n % COLOURS.length],
            borderColor: COLOURS[n % COLOURS.length],
            borderWidth: kind === "line" ? 2 : 0,
            pointRadius: kind === "line" ? 2 : 0,
            spanGaps: false
          };
        })
      },
      options: {
        indexAxis: bars ? "y" : "x",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { beginAtZero: true }, y: { beginAtZero: true } },
        plugins: { legend: { position: "bottom" } }
      }
    });
    var details = table.closest("details");
    if (details) { details.open = false; }
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll(".dashboard-chart[data-table]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
