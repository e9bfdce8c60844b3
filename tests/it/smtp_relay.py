"""The SMTP server of Tessera's tests: aiosmtpd (Debian's python3-aiosmtpd), keeping every message
it accepts in a Maildir. Plain by default; with --tls starttls it takes mail only after STARTTLS
(RFC 3207), with --tls implicit it speaks TLS from the first byte (RFC 8314), and with --login it
takes mail only from that USER:PASSWORD (SMTP AUTH, RFC 4954). Runs until SIGTERM."""

import argparse
import signal
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--login", help="USER:PASSWORD")
    args = parser.parse_args()

    # Blocked before the server's thread starts, so that only sigwait below receives them.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)

    options = {}
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:
            options.update(ssl_context=context)
    if args.login:
        user, password = args.login.split(":", 1)

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user.encode() and auth_data.password == password.encode()
            return AuthResult(success=ok)

        # aiosmtpd tells only STARTTLS sessions apart; an implicit-TLS one is TLS throughout.
        implicit = args.tls == "implicit"
        options.update(
            authenticator=authenticate, auth_required=True, auth_require_tls=not implicit
        )

    controller = Controller(
        Mailbox(args.maildir), hostname="127.0.0.1", port=args.port, **options
    )
    controller.start()
    signal.sigwait(stop)
    controller.stop()


if __name__ == "__main__":
    main()
