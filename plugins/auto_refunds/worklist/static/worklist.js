// The worklist's only script: "select all" on a page of exceptions, and a confirmation before
// resolving. The pages work without it.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="key"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
  var form = document.getElementById("resolve-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      var n = document.querySelectorAll('input[name="key"]:checked').length;
      if (n === 0) { event.preventDefault(); alert("Select at least one exception first."); return; }
      if (!confirm("Mark " + n + " exception(s) resolved?")) { event.preventDefault(); }
    });
  }
});
