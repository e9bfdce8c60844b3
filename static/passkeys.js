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

  // The server's challenge options as the browser takes them.
  const publicKey = (options) => {
    const key = withoutNulls(options).publicKey;
    key.challenge = bytes(key.challenge);
    for (const list of [key.excludeCredentials, key.allowCredentials]) {
      for (const credential of list || []) credential.id = bytes(credential.id);
    }
    if (key.user) key.user.id = bytes(key.user.id);
    return key;
  };

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

  const post = (form, credential) => {
    form.elements.credential.value = JSON.stringify(answer(credential));
    form.submit();
  };

  // The ceremony page: one ceremony, its options in the form.
  const ceremony = document.getElementById("passkey-ceremony");
  if (ceremony) {
    const status = document.getElementById("passkey-status");
    if (!supported) {
      status.textContent = "This browser cannot use passkeys.";
      return;
    }
    const options = { publicKey: publicKey(JSON.parse(ceremony.dataset.options)) };
    const asked = ceremony.dataset.mode === "create"
      ? navigator.credentials.create(options)
      : navigator.credentials.get(options);
    asked.then(
      (credential) => post(ceremony, credential),
      (error) => {
        status.textContent = "No passkey was used (" + error.name + "). Go back to try again.";
      });
  }

  // The login page: passkeys offered in the user name's autofill (conditional mediation), where
  // the browser can. It is an offer: on any failure the form and the button stay as they are.
  const autofill = document.getElementById("passkey-autofill");
  const offersAutofill = async () => {
    if (!supported || !PublicKeyCredential.isConditionalMediationAvailable) return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    const started = await fetch("/login/passkey/start", {
      method: "POST",
      body: new URLSearchParams({
        csrf_token: autofill.elements.csrf_token.value,
        interaction: autofill.elements.interaction.value,
        mediation: "conditional",
      }),
    });
    if (!started.ok) return;
    const challenge = await started.json();
    autofill.elements.token.value = challenge.token;
    const options = { mediation: "conditional", publicKey: publicKey(challenge.options) };
    post(autofill, await navigator.credentials.get(options));
  };
  if (autofill) offersAutofill().catch(() => {});
})();
