// The panel's only script besides htmx. The Content-Security-Policy forbids inline scripts and on*= handlers,
// so every behaviour a template needs is declared with a data-* attribute or a CSS class and wired here by
// event delegation (it works for fragments htmx swaps in later, too). htmx itself is configured by the
// `htmx-config` meta tag in base.html (no eval: trigger filters such as keyup[key=='Enter'] are replaced by
// the enter-key / escape-key events below).
(function () {
  "use strict";

  // --- Navigation: the Menu button (narrow screens) and the section menus --------------------------------
  function closeMenus(except) {
    document.querySelectorAll(".navgroup.open").forEach(function (group) {
      if (group === except) return;
      group.classList.remove("open");
      var button = group.querySelector(".navgroup-title");
      if (button) button.setAttribute("aria-expanded", "false");
    });
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest(".navtoggle");
    if (toggle) {
      var open = document.body.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    var title = event.target.closest(".navgroup-title");
    if (title) {
      var group = title.closest(".navgroup");
      var opened = !group.classList.contains("open");
      closeMenus(group);
      group.classList.toggle("open", opened);
      title.setAttribute("aria-expanded", opened ? "true" : "false");
      return;
    }
    if (!event.target.closest(".navgroup")) closeMenus(null);
  });

  // --- Keys: Enter and Escape as events htmx can listen to (hx-trigger="enter-key from:closest tbody") ----
  document.addEventListener("keyup", function (event) {
    if (event.key === "Escape") {
      closeMenus(null);
      event.target.dispatchEvent(new CustomEvent("escape-key", { bubbles: true }));
    } else if (event.key === "Enter" && event.target.tagName !== "TEXTAREA") {
      event.target.dispatchEvent(new CustomEvent("enter-key", { bubbles: true }));
    }
  });

  // --- Click to edit: a click on a [data-click-edit] element, not on one of its controls, sends row-edit ---
  document.addEventListener("click", function (event) {
    var row = event.target.closest("[data-click-edit]");
    if (!row || event.target.closest("button, a, form, input, select, textarea, label")) return;
    row.dispatchEvent(new CustomEvent("row-edit", { bubbles: false }));
  });

  // --- Confirmations: <form data-confirm="Delete …?"> asks before it is sent -------------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // --- Filter forms: a GET form leaves empty fields out of the address (no `&client_id=&ident_by=`) ------
  // A field marked data-keep-empty is sent even when empty (its absence means "the default" to the view).
  function isEmptyFilter(form, name, value) {
    if (value !== "") return false;
    var field = form && form.elements ? form.elements.namedItem(name) : null;
    return !(field && field.dataset && "keepEmpty" in field.dataset);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if ((form.getAttribute("method") || "get").toLowerCase() !== "get") return;
    var disabled = [];
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && !field.disabled && field.type !== "submit" && field.type !== "button"
          && isEmptyFilter(form, field.name, field.value)) {
        field.disabled = true;  // a disabled field is not sent; enabled again right after
        disabled.push(field);
      }
    });
    setTimeout(function () { disabled.forEach(function (field) { field.disabled = false; }); }, 0);
  }, true);

  document.addEventListener("htmx:configRequest", function (event) {
    var detail = event.detail;
    if (detail.verb !== "get") return;
    var form = detail.elt.closest("form");
    if (!form || (form.getAttribute("method") || "get").toLowerCase() !== "get") return;
    var empty = [];
    detail.parameters.forEach(function (value, name) {
      if (isEmptyFilter(form, name, value)) empty.push(name);
    });
    empty.forEach(function (name) { detail.parameters.delete(name); });
  });

  // --- Dialogs: a dialog.modal swapped in opens itself; [data-dialog-close] closes it; closed = removed ----
  function openDialogs(root) {
    var dialogs = root.querySelectorAll ? root.querySelectorAll("dialog.modal") : [];
    if (root.matches && root.matches("dialog.modal")) dialogs = [root];
    Array.prototype.forEach.call(dialogs, function (dialog) {
      if (!dialog.open && dialog.isConnected) dialog.showModal();
    });
  }
  document.addEventListener("htmx:load", function (event) { openDialogs(event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () { openDialogs(document); });
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-dialog-close]");
    if (closer && closer.closest("dialog")) closer.closest("dialog").close();
    var remover = event.target.closest("[data-remove-closest]");
    if (remover) {
      var gone = remover.closest(remover.dataset.removeClosest);
      if (gone) gone.remove();
    }
  });
  // "close" does not bubble: listen while it is captured.
  document.addEventListener("close", function (event) {
    if (event.target.matches && event.target.matches("dialog.modal")) event.target.remove();
  }, true);

  // --- Secrets: a [data-select-on-focus] field selects its whole value for copying -------------------------
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });
  document.addEventListener("click", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });

  // --- Rules tab: a saved or deleted rule announces when the change takes effect (HX-Trigger ruleChanged) --
  document.addEventListener("ruleChanged", function (event) {
    var notice = document.getElementById("rules-notice");
    if (!notice) return;
    notice.textContent = event.detail.value;
    notice.hidden = false;
    var empty = document.querySelector("tbody.no-rules");  // the first rule was just added
    if (empty) empty.remove();
  });

  // --- Errors: a failed htmx request (403, 404, 409, 500) shows its reason instead of failing silently ----
  document.addEventListener("htmx:responseError", function (event) {
    var flash = document.getElementById("flash");
    if (!flash) return;
    var xhr = event.detail.xhr;
    var div = document.createElement("div");
    div.className = "flash flash-error";
    div.setAttribute("role", "alert");
    div.textContent = xhr.status === 403 ? "You may not change this (read-only access)."
      : xhr.status === 404 ? "Not found: it may have been deleted."
      : "The request failed (" + xhr.status + "). "
        + (xhr.responseText || "").replace(/<[^>]*>/g, " ").trim().slice(0, 200);
    flash.appendChild(div);
  });
})();
