// Panel-wide htmx settings: 422 responses carry the form with its errors, so swap them like 200.
document.addEventListener("DOMContentLoaded", function () {
  if (!window.htmx) return;
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];
});
// A failed htmx request (403, 404, 409, 500) shows its reason instead of failing silently.
document.addEventListener("htmx:responseError", function (event) {
  var flash = document.getElementById("flash");
  if (!flash) return;
  var xhr = event.detail.xhr;
  var div = document.createElement("div");
  div.className = "flash flash-error";
  div.setAttribute("role", "alert");
  div.textContent = xhr.status === 403 ? "You may not change this (read-only access)."
    : xhr.status === 404 ? "Not found: it may have been deleted."
    : "The request failed (" + xhr.status + "). " + (xhr.responseText || "").replace(/<[^>]*>/g, " ").trim().slice(0, 200);
  flash.appendChild(div);
});
