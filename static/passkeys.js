// Tessera's only script: runs passkey ceremonies (W3C WebAuthn: navigator.credentials.create()
// and get()) and shows the passkey buttons where the browser has WebAuthn. Every page works
// without it for passwords and TOTP.
"use strict";
(function () {
  const supported = typeof window.PublicKeyCredential === "function";
  for (const id of ["passkey-sign-in", "passkey-verify", "add-passkey"]) {
    const button = document.getElementById(id);
    if (button) button.hidden = !supported;
  }
  const unsupported = document.getElementById("passkeys-unsupported");
  if (unsupported) unsupported.hidden = supported;

  const form = document.getElementById("passkey-ceremony");
  if (!form) return;
  const status = document.getElementById("passkey-status");
  if (!supported) {
    status.textContent = "This browser cannot use passkeys.";
    return;
  }

  // base64url without padding (the server's encoding) to bytes and back.
  const bytes = (text) =>
    Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const text = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  // Absent members, not nulls: WebIDL dictionaries refuse null for most of them.
  const withoutNulls = (value) => {
    if (Array.isArray(value)) return value.map(withoutNulls);
    if (value && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]));
    }
    return value;
  };

  const options = withoutNulls(JSON.parse(form.dataset.options)).publicKey;
  options.challenge = bytes(options.challenge);
  for (const list of [options.excludeCredentials, options.allowCredentials]) {
    for (const credential of list || []) credential.id = bytes(credential.id);
  }

  const answer = (credential) => {
    const r = credential.response;
    const response = { clientDataJSON: text(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = text(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = text(r.authenticatorData);
      response.signature = text(r.signature);
      if (r.userHandle) response.userHandle = text(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      response,
      extensions: credential.getClientExtensionResults(),
    };
  };

  let ceremony;
  if (form.dataset.mode === "create") {
    options.user.id = bytes(options.user.id);
    ceremony = navigator.credentials.create({ publicKey: options });
  } else {
    ceremony = navigator.credentials.get({ publicKey: options });
  }
  ceremony.then(
    (credential) => {
      form.elements.credential.value = JSON.stringify(answer(credential));
      form.submit();
    },
    (error) => {
      status.textContent = "No passkey was used (" + error.name + "). Go back to try again.";
    });
})();
