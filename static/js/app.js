/* Progressive enhancement only: every page works without this file.
 * - [data-countdown="ISO time"]: live "in 3 min 12 s" until that time; when it reaches zero
 *   it fires a bubbling "countdown-done" event (the status card refreshes on it).
 * - tr.table-clickable[data-href]: the whole row opens its link (the row also has a real <a>).
 * - details.menu: closes on outside click and Escape.
 * - [hx-trigger^="every"] (a PENDING/RUNNING job's status card): no poll while the tab is
 *   hidden; one refresh as soon as it is shown again.
 * - time[datetime]: the server writes UTC ("2026-12-07 00:16:01 UTC"); such a text is
 *   rewritten in the browser's time zone, and every time's tooltip gives both the viewer's
 *   time and UTC (relative ones, "3 min ago", keep their text).
 * Loaded with `defer` under a strict CSP (script-src 'self'): no inline handlers anywhere. */
(function () {
  "use strict";

  function formatCountdown(seconds) {
    if (seconds <= 0) return "due now";
    if (seconds < 60) return "in " + seconds + " s";
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    if (minutes < 60) return "in " + minutes + " min " + rest + " s";
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 48) return "in " + hours + " h " + minutes + " min";
    return "in " + Math.floor(hours / 24) + " days";
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var target = Date.parse(el.dataset.countdown || el.getAttribute("datetime"));
      if (isNaN(target)) return;
      var seconds = Math.round((target - now) / 1000);
      var before = el.dataset.seconds === undefined ? null : Number(el.dataset.seconds);
      el.textContent = formatCountdown(seconds);
      el.dataset.seconds = String(Math.max(0, seconds));
      if (before !== null && before > 0 && seconds <= 0) {
        // The sync is due: the Overview's status card listens (hx-trigger="countdown-done
        // delay:6s") and refreshes once, picking up the job the scheduler started.
        el.dispatchEvent(new CustomEvent("countdown-done", { bubbles: true }));
      }
    });
  }

  function onRowClick(event) {
    var row = event.target.closest("tr.table-clickable[data-href]");
    if (!row) return;
    // Let real links, buttons and form controls inside the row do their own thing,
    // and leave text selection alone.
    if (event.target.closest("a, button, input, select, textarea, label, summary")) return;
    if (window.getSelection && String(window.getSelection())) return;
    var href = row.dataset.href;
    if (event.ctrlKey || event.metaKey || event.button === 1) {
      window.open(href, "_blank", "noopener");
    } else {
      window.location.assign(href);
    }
  }

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  document.addEventListener("click", function (event) {
    onRowClick(event);
    closeMenus(event.target.closest("details.menu"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var open = document.querySelector("details.menu[open]");
      if (open) {
        open.removeAttribute("open");
        var summary = open.querySelector("summary");
        if (summary) summary.focus();
      }
    }
  });

  // A job page left open in a background tab would ask the server for its status every 4 s
  // for as long as the job runs, for a card nobody sees: with many tabs that is most of the
  // polling load. htmx keeps its timer; while the tab is hidden each poll is skipped, and the
  // card refreshes once the moment the tab is shown again.
  function isPoller(el) {
    return /^\s*every\s/.test((el && el.getAttribute("hx-trigger")) || "");
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && isPoller(event.detail.elt)) event.preventDefault();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll("[hx-trigger][hx-get]").forEach(function (el) {
      if (!isPoller(el)) return;
      window.htmx.ajax("GET", el.getAttribute("hx-get"), { source: el, target: el, swap: "outerHTML" });
    });
  });

  // A fragment the admin asked for (a log page, a filter, the platform's connector list) that
  // the server answers with an error: show that answer as the page, whose words say what
  // happened (404; 500: "nothing was changed"), instead of a click that seems to do nothing.
  // Polls and the refreshes a finished job triggers are not the admin's: they try again.
  document.addEventListener("htmx:responseError", function (event) {
    var el = event.detail.elt;
    if (!el || isPoller(el) || !el.matches("a, form, select, input, button")) return;
    var path = event.detail.pathInfo && event.detail.pathInfo.finalRequestPath;
    if (path) window.location.assign(path);
  });

  // A part of a page that loads itself once shown (aria-busy, e.g. the record page's
  // comparison with WordPress) says so when its request fails, instead of "Asking…" for ever.
  function partFailed(event) {
    var el = event.detail.elt;
    if (!el || el.getAttribute("aria-busy") !== "true") return;
    el.removeAttribute("aria-busy");
    var status = el.querySelector("[role=status]");
    if (status) {
      status.className = "error-text";
      status.textContent = "This part of the page could not be loaded. Reload the page to try again.";
    }
  }
  document.addEventListener("htmx:responseError", partFailed);
  document.addEventListener("htmx:sendError", partFailed);

  var UTC_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? UTC$/;

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function zoneName(date) {
    try {
      var part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
        .formatToParts(date)
        .filter(function (p) { return p.type === "timeZoneName"; })[0];
      return part ? part.value : "";
    } catch (e) {
      return "";
    }
  }

  // "2026-12-07 01:16:01 CET": the server's layout, in the viewer's zone.
  function formatLocal(date, seconds) {
    var text = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
    if (seconds) text += ":" + pad(date.getSeconds());
    var zone = zoneName(date);
    return zone ? text + " " + zone : text;
  }

  function formatUTC(date) {
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function localTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.localised) return;
      var value = el.getAttribute("datetime");
      if (!/T\d{2}:\d{2}/.test(value)) return; // a date alone has no zone
      var date = new Date(value);
      if (isNaN(date.getTime())) return;
      el.dataset.localised = "1";
      var text = el.textContent.trim();
      if (UTC_TEXT.test(text)) el.textContent = formatLocal(date, text.split(":").length > 2);
      el.title = formatLocal(date, true) + " (" + formatUTC(date) + ")";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickCountdowns();
    localTimes();
  });
  // htmx swaps new status cards in: refresh their countdowns at once.
  document.addEventListener("htmx:afterSettle", function () {
    tickCountdowns();
    localTimes(); // the times already done are marked, so this only touches the new ones
  });
  window.setInterval(tickCountdowns, 1000);
})();
