// Passkeys (WebAuthn) for the forms marked data-passkey="get" (sign in, second factor) or
// data-passkey="create" (register one): ask the portal for the options, let the browser's
// authenticator answer, and post its answer (JSON, binary fields in base64url) in the form's
// hidden "passkey" field. Without JavaScript or WebAuthn the form says so and nothing is sent.
(function () {
  "use strict";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBytes(item.id) });
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: descriptors(json.allowCredentials),
    });
  }

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials),
    });
  }

  function serialise(credential) {
    var response = credential.response;
    var answer = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      answer.response.attestationObject = toText(response.attestationObject);
      if (response.getTransports) answer.response.transports = response.getTransports();
    } else {
      answer.response.authenticatorData = toText(response.authenticatorData);
      answer.response.signature = toText(response.signature);
      if (response.userHandle) answer.response.userHandle = toText(response.userHandle);
    }
    return JSON.stringify(answer);
  }

  function say(form, message) {
    var box = form.querySelector("[data-passkey-error]");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  async function ceremony(form) {
    var mode = form.getAttribute("data-passkey");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form, form.getAttribute("data-passkey-unsupported"));
      return;
    }
    var body = new URLSearchParams();
    var ticket = form.querySelector("input[name=ticket]");
    if (ticket) body.set("ticket", ticket.value);
    try {
      var answer = await fetch(form.getAttribute("data-passkey-options"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      var options = await answer.json();
      if (!answer.ok) {
        say(form, options.error || form.getAttribute("data-passkey-failed"));
        return;
      }
      var credential =
        mode === "create"
          ? await navigator.credentials.create({ publicKey: creationOptions(options) })
          : await navigator.credentials.get({ publicKey: requestOptions(options) });
      form.querySelector("input[name=passkey]").value = serialise(credential);
      form.submit();
    } catch (error) {
      say(form, form.getAttribute("data-passkey-failed"));
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-passkey")) return;
    var field = form.querySelector("input[name=passkey]");
    if (field && field.value) return; // the answer is in: post it
    event.preventDefault();
    ceremony(form);
  });
})();
