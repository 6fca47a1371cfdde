// The login form: posts the credentials, then goes where the user was headed.
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const data = new FormData(form);
  const response = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ username: data.get("username"), password: data.get("password") }),
  });
  if (!response.ok) {
    error.hidden = false;
    return;
  }
  const next = new URLSearchParams(location.search).get("next");
  const local = next && /^\/(?![\/\\])/.test(next);
  window.location.assign(local ? next : "/inbox");
});
