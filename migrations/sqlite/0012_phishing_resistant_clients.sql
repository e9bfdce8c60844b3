-- Clients whose sign-ins need a passkey (`tessera client create --require-phishing-resistant`,
-- acr `phr`; issue 18).
ALTER TABLE clients ADD COLUMN require_phishing_resistant INTEGER NOT NULL DEFAULT 0;
