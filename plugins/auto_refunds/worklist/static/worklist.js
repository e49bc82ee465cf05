// The worklist's only script: Airflow's theme and timezone, "select all" on a page of exceptions, a message instead of an
// empty submission, and the pickers that show their choice at once. Here rather than in onchange
// attributes: the pages' Content-Security-Policy runs no inline script. The Airflow UI frames the pages in a sandbox without modals, so no alert()
// or confirm(): they would return at once and block the form. The pages work without it.
// Airflow's theme: the framing UI's root carries "dark" or "light" (its class); else the choice
// it keeps in localStorage ("theme": light, dark or system); else the system's.
(function () {
  var root = document.documentElement;
  function stored(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function theme() {
    var chosen = null;
    try {
      var top = window.parent.document.documentElement;
      if (top !== root) {
        if (top.classList.contains("dark")) { chosen = "dark"; } else if (top.classList.contains("light")) { chosen = "light"; }
      }
    } catch (e) { chosen = null; }
    if (!chosen) { chosen = stored("theme"); }
    if (chosen !== "dark" && chosen !== "light") {
      chosen = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    }
    root.setAttribute("data-theme", chosen);
  }
  theme();
  window.addEventListener("storage", theme);
  try { new MutationObserver(theme).observe(window.parent.document.documentElement, { attributes: true }); } catch (e) { /* not framed */ }
  // Moments are kept in UTC; shown in the timezone chosen in Airflow's UI ("timezone" in
  // localStorage, as Airflow keeps it), else the browser's.
  function zone() {
    var value = stored("timezone");
    try { value = JSON.parse(value); } catch (e) { /* a bare name */ }
    try { new Intl.DateTimeFormat("en-US", { timeZone: value }); return value || undefined; } catch (e) { return undefined; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var tz = zone();
    var format = new Intl.DateTimeFormat(undefined, {
      timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
    });
    document.querySelectorAll("time[datetime]").forEach(function (moment) {
      var text = moment.getAttribute("datetime");
      var iso = /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text.replace(" ", "T") + "Z";
      var when = new Date(iso);
      if (!isNaN(when.getTime())) {
        moment.title = text + " UTC";
        moment.textContent = format.format(when);
      }
    });
  });
})();

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  document.querySelectorAll("select[data-run-select]").forEach(function (select) {
    select.addEventListener("change", function () {
      var chosen = select.value.split(" ");
      select.form.kind.value = chosen[0];
      select.form.date.value = chosen[1];
      select.form.submit();
    });
  });
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="key"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
  var form = document.getElementById("resolve-form");
  var message = document.getElementById("resolve-message");
  if (form && message) {
    form.addEventListener("submit", function (event) {
      if (document.querySelectorAll('input[name="key"]:checked').length === 0) {
        event.preventDefault();
        message.textContent = "Select at least one exception first.";
      }
    });
  }
});
