/* People page (admins): every user with their roles (GET /api/users/), and the form that adds one
 * (POST /api/users/) with an initial password or a one-time invitation link shown to copy. */
(function () {
  "use strict";

  const { api, el, toast, formatDate } = window.Studio;
  const { roleBadges, statusBadge, checkedIds, showError, showInvitation, hideInvitation } = window.People;
  const root = document.getElementById("people");
  if (!root) return;

  const usersUrl = root.dataset.apiRoot + "users/";
  const body = root.querySelector('[data-region="users"]');
  const count = root.querySelector('[data-region="count"]');
  const form = root.querySelector('[data-region="create-form"]');
  const password = form.querySelector('[name="password"]');
  const error = root.querySelector('[data-region="create-error"]');

  function personUrl(id) {
    return root.dataset.personUrl.replace(/0\/$/, id + "/");
  }

  function row(user, newId) {
    return el("tr", { className: user.id === newId ? "is-new" : "", dataset: { testid: "user-" + user.username, userId: user.id } }, [
      el("td", null, el("div", { className: "people-user" }, [
        el("a", { className: "strong", href: personUrl(user.id) }, user.username),
        user.email ? el("span", { className: "muted small" }, user.email) : null,
      ])),
      el("td", { className: "people-roles" }, roleBadges(user)),
      el("td", null, statusBadge(user)),
      el("td", { className: "muted nowrap" }, user.last_login ? formatDate(user.last_login) : "never"),
      el("td", { className: "num" }, user.labels),
    ]);
  }

  function load(newId) {
    return api("GET", usersUrl).then(({ data }) => {
      count.textContent = data.length + " " + (data.length === 1 ? "person" : "people");
      body.replaceChildren(...data.map((user) => row(user, newId)));
    }, (failure) => toast(failure.detail));
  }

  form.addEventListener("change", (event) => {
    if (event.target.name !== "sign_in") return;
    password.hidden = event.target.value !== "password";
    if (!password.hidden) password.focus();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    showError(error, null);
    hideInvitation(root);
    const payload = {
      username: form.elements.username.value.trim(),
      email: form.elements.email.value.trim(),
      is_admin: form.elements.is_admin.checked,
      annotator_of: checkedIds(form, "annotator_of"),
      reviewer_of: checkedIds(form, "reviewer_of"),
    };
    if (form.elements.sign_in.value === "password") payload.password = password.value;
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    api("POST", usersUrl, payload).then(({ data }) => {
      toast(data.user.username + " added.", "success");
      if (data.invitation) showInvitation(root, data.invitation, "Invitation link for " + data.user.username);
      form.reset();
      password.hidden = true;
      return load(data.user.id);
    }, (failure) => showError(error, failure)).finally(() => { submit.disabled = false; });
  });

  load();
})();
