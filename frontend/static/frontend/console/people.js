/* People pages, shared: role badges, the project checkboxes, showing a one-time link.
 * Exposed as window.People; the page scripts (people_list.js, people_person.js) load after it. */
(function () {
  "use strict";

  const { el, toast, formatDate } = window.Studio;

  function plural(count) {
    return count + " project" + (count === 1 ? "" : "s");
  }

  /** Badges for what the user may do: admin, reviewer of N, annotator of N. */
  function roleBadges(user) {
    const badges = [];
    if (user.is_admin) badges.push(el("span", { className: "badge badge--info" }, "admin"));
    if (user.reviewer_of.length) {
      badges.push(el("span", { className: "badge badge--success", title: user.reviewer_of.map((p) => p.name).join(", ") },
        "reviewer of " + plural(user.reviewer_of.length)));
    }
    if (user.annotator_of.length) {
      badges.push(el("span", { className: "badge badge--muted", title: user.annotator_of.map((p) => p.name).join(", ") },
        "annotator of " + plural(user.annotator_of.length)));
    }
    if (!badges.length) badges.push(el("span", { className: "muted small" }, "no role yet"));
    return badges;
  }

  /** Active, inactive, or invited (active but no password chosen yet). */
  function statusBadge(user) {
    if (!user.is_active) return el("span", { className: "badge badge--danger" }, "inactive");
    if (!user.has_password) return el("span", { className: "badge badge--warning", title: "Has not chosen a password yet" }, "invited");
    return el("span", { className: "badge badge--success" }, "active");
  }

  function checkedIds(form, name) {
    return Array.from(form.querySelectorAll('input[name="' + name + '"]:checked'), (box) => Number(box.value));
  }

  function setChecked(form, name, ids) {
    const wanted = new Set(ids);
    for (const box of form.querySelectorAll('input[name="' + name + '"]')) box.checked = wanted.has(Number(box.value));
  }

  function showError(node, error) {
    node.textContent = error ? error.detail : "";
    node.hidden = !error;
  }

  /** Fill the invitation box under `root` with a fresh link and select it for copying. */
  function showInvitation(root, invitation, title) {
    const box = root.querySelector('[data-region="invitation"]');
    box.querySelector('[data-region="invitation-title"]').textContent = title;
    box.querySelector('[data-region="invitation-url"]').value = invitation.url;
    box.querySelector('[data-region="invitation-expires"]').textContent = formatDate(invitation.expires_at);
    box.querySelector('[data-region="invitation-emailed"]').hidden = !invitation.emailed;
    box.hidden = false;
    box.querySelector('[data-region="invitation-url"]').select();
  }

  function hideInvitation(root) {
    root.querySelector('[data-region="invitation"]').hidden = true;
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest('[data-action="copy-invitation"]');
    if (!button) return;
    const input = button.parentElement.querySelector("input");
    input.select();
    const copied = navigator.clipboard ? navigator.clipboard.writeText(input.value) : Promise.reject(new Error("no clipboard"));
    copied.then(() => toast("Link copied.", "success"), () => toast("Select the link and copy it (Ctrl+C).", "info"));
  });

  window.People = { roleBadges, statusBadge, checkedIds, setChecked, showError, showInvitation, hideInvitation };
})();
