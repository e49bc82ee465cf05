// The worklist's only script: "select all" on a page of exceptions, a message instead of an
// empty submission, and the pickers that show their choice at once. Here rather than in onchange
// attributes: the pages' Content-Security-Policy runs no inline script. The Airflow UI frames the pages in a sandbox without modals, so no alert()
// or confirm(): they would return at once and block the form. The pages work without it.
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
