// The visitor's time zone, as their browser knows it, for the times the server renders
// (SLA deadlines read in the customer's own zone). A cookie, so that every later page has it.
(function () {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) { return; }
  var current = document.cookie.split("; ").filter(function (c) { return c.indexOf("guichet_tz=") === 0; })[0];
  var value = "guichet_tz=" + encodeURIComponent(zone);
  if (current !== value) {
    document.cookie = value + "; path=/; max-age=31536000; samesite=lax";
  }
})();
