/* One user's page (admins): projects annotated and reviewed (PATCH /api/users/{id}/), admin right,
 * activation, and password resets: a one-time link (POST .../invitation/) or a temporary password
 * (POST .../password/). The server refuses what would lock admins out; its sentence is shown. */
(function () {
  "use strict";

  const { api, el, toast, formatDate } = window.Studio;
  const { roleBadges, statusBadge, checkedIds, setChecked, showError, showInvitation } = window.People;
  const root = document.getElementById("person");
  if (!root) return;

  const userUrl = root.dataset.apiRoot + "users/" + root.dataset.userId + "/";
  const isSelf = root.dataset.isSelf === "1";
  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const projectsForm = region("projects-form");
  const adminButton = root.querySelector('[data-action="toggle-admin"]');
  const activeButton = root.querySelector('[data-action="toggle-active"]');
  let user = null;

  function render(data) {
    user = data;
    region("badges").replaceChildren(statusBadge(user), ...roleBadges(user));
    region("summary").textContent = [
      user.email || "no e-mail",
      "joined " + formatDate(user.date_joined),
      "last login " + (user.last_login ? formatDate(user.last_login) : "never"),
      user.labels + " label" + (user.labels === 1 ? "" : "s"),
    ].join(" · ");
    setChecked(projectsForm, "annotator_of", user.annotator_of.map((p) => p.id));
    setChecked(projectsForm, "reviewer_of", user.reviewer_of.map((p) => p.id));
    adminButton.textContent = user.is_admin ? "Revoke admin" : "Make admin";
    activeButton.textContent = user.is_active ? "Deactivate" : "Reactivate";
    activeButton.classList.toggle("btn--primary", !user.is_active);
    root.querySelector('[data-action="new-link"]').disabled = isSelf || !user.is_active;
    root.querySelector('[data-action="temporary-password"]').disabled = isSelf;
  }

  function patch(changes, errorRegion, done) {
    showError(region(errorRegion), null);
    return api("PATCH", userUrl, changes).then(({ data }) => {
      render(data);
      toast(done, "success");
    }, (failure) => showError(region(errorRegion), failure));
  }

  projectsForm.addEventListener("submit", (event) => {
    event.preventDefault();
    patch(
      { annotator_of: checkedIds(projectsForm, "annotator_of"), reviewer_of: checkedIds(projectsForm, "reviewer_of") },
      "projects-error", "Projects saved.",
    );
  });

  adminButton.addEventListener("click", () => {
    patch({ is_admin: !user.is_admin }, "access-error", user.is_admin ? "Admin revoked." : "Now an admin.");
  });

  activeButton.addEventListener("click", () => {
    patch({ is_active: !user.is_active }, "access-error", user.is_active ? "Deactivated." : "Reactivated.");
  });

  root.querySelector('[data-action="new-link"]').addEventListener("click", () => {
    showError(region("password-error"), null);
    api("POST", userUrl + "invitation/").then(({ data }) => {
      region("temporary").hidden = true;
      showInvitation(root, data, "New link for " + user.username);
      return api("GET", userUrl).then(({ data: fresh }) => render(fresh));
    }, (failure) => showError(region("password-error"), failure));
  });

  root.querySelector('[data-action="temporary-password"]').addEventListener("click", () => {
    showError(region("password-error"), null);
    api("POST", userUrl + "password/", {}).then(({ data }) => {
      region("invitation").hidden = true;
      region("temporary-value").textContent = data.password;
      region("temporary").hidden = false;
      return api("GET", userUrl).then(({ data: fresh }) => render(fresh));
    }, (failure) => showError(region("password-error"), failure));
  });

  api("GET", userUrl).then(({ data }) => render(data), (failure) => toast(failure.detail));
})();
