#!/usr/bin/env bash
# End-to-end test, opt-in: regmail behind a real Postfix, on loopback only.
#
#   sudo tests/e2e/postfix.sh        (Debian 12, root; installs postfix, procmail, openssl)
#
# It builds regmail, makes a registry in a temporary data directory owned by the
# system user `regmail`, configures Postfix (every change by postconf -e/-M, undone
# at the end) with the pipe(8) transport of cli.md section 5 for
# robot@registry.example and procmail for the local user regmail, submits signed
# templates over SMTP to 127.0.0.1:25, and checks that:
#   - every reply comes back through Postfix's sendmail into the registrar's local
#     mailbox, signed by the registry (gpg --verify), with the expected result;
#   - a mail regmail cannot take (database locked: exit 75) stays deferred in
#     Postfix's queue, is retried by Postfix, and once the lock is gone is handled
#     and answered exactly once, by both routes (pipe transport and procmail);
#   - with `regmail serve` running, the pipe transport's and procmail's `process`
#     runs hand their mail to it (its log shows them handled);
#   - with the `smtp` transport, plain to localhost:25 (contrib/README.md's setting)
#     and with STARTTLS (a CA made for the run as `smtp_ca_file`: over TLS), the
#     replies go to Postfix over SMTP and arrive like the others;
#   - nothing is lost: N mails submitted -> N journal rows -> N replies, no duplicate.
# Prints PASS and the time taken; exits non-zero with a message on any failure.
# Leaves the packages and the test users (regmail, registrar1001..1003) installed;
# removes everything else (on failure it keeps the work directory for inspection).
# REGMAIL_E2E_KEEP=1 keeps it after a pass too; REGMAIL_E2E_TIMEOUT (seconds, 120)
# bounds each wait.
set -Eeuo pipefail
trap 'printf "\nFAIL: line %s: %s (exit %s)\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

START=$(date +%s)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
E2E="$ROOT/tests/e2e"
HELPER="$E2E/postfix_helper.py"
PY=/usr/bin/python3
TIMEOUT=${REGMAIL_E2E_TIMEOUT:-120}
MARK="regmail e2e test"
BACKUP=/var/backups/regmail-e2e-postfix
PFLOG=/var/log/regmail-e2e-postfix.log
REGISTRARS=(1001:alice:"Alpine Domains GmbH" 1002:bob:"Blue Registrar KG" 1003:carol:"Coral Names OG")
ROBOT=robot@registry.example
PROCMAIL_ROBOT=regmail@localhost

say() { printf '[e2e %4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
fail() {
    printf '\nFAIL: %s\n' "$*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: the test installs and configures Postfix"
[ -x "$PY" ] || fail "$PY is needed"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$HOME/.cargo/bin:$PATH"

# --- packages -------------------------------------------------------------
T0=$(date +%s)
need=()
[ -x /usr/sbin/postfix ] || need+=(postfix)
[ -x /usr/bin/procmail ] || need+=(procmail)
command -v gpg >/dev/null || need+=(gpg)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    echo "postfix postfix/mailname string regmail-e2e.test" | debconf-set-selections
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
T_INSTALL=$(($(date +%s) - T0))

# --- build ------------------------------------------------------------------
T0=$(date +%s)
say "cargo build --locked --bin regmail"
(cd "$ROOT" && cargo build --locked --bin regmail)
TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
T_BUILD=$(($(date +%s) - T0))
T_TEST0=$(date +%s)

WORK=$(mktemp -d /tmp/regmail-e2e.XXXXXX)
chmod 755 "$WORK"
DATA="$WORK/data"
BIN="$WORK/bin/regmail"
LOCK_PID=
SERVE_PID=
PF_STARTED=
PF_WAS_RUNNING=

# Removes this test's mail from Postfix's queue (all recipients are the test's
# addresses), so that a failed run leaves nothing to be retried; works with
# Postfix stopped.
purge_our_mail() {
    local f rcpts ours='^(robot@registry\.example|regmail@localhost|[^@]+@registrars\.test)$'
    { find /var/spool/postfix/{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null || true; } |
        while read -r f; do
            rcpts=$(postcat -e "$f" 2>/dev/null | sed -n 's/^recipient: //p')
            [ -n "$rcpts" ] || continue
            grep -qvE "$ours" <<<"$rcpts" && continue
            case $f in
            */maildrop/*) rm -f "$f" ;;
            *) postsuper -d "${f##*/}" >/dev/null 2>&1 || true ;;
            esac
        done
    return 0
}

# Stops this run's `regmail serve`: runuser does not pass SIGTERM on to it,
# so it is found by its command line.
stop_serve() {
    pkill -f -x -- "$BIN --data-dir $DATA serve" || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
    ! pgrep -f -x -- "$BIN --data-dir $DATA serve" >/dev/null || fail "regmail serve is still running"
}

restore_postfix() {
    if [ -d "$BACKUP" ]; then
        cp -p "$BACKUP/main.cf" /etc/postfix/main.cf
        cp -p "$BACKUP/master.cf" /etc/postfix/master.cf
        rm -rf "$BACKUP"
    fi
}

cleanup() {
    local rc=$?
    set +e
    trap - ERR
    if [ -n "$LOCK_PID" ]; then
        touch "$WORK/release"
        wait "$LOCK_PID" 2>/dev/null
    fi
    [ -n "$SERVE_PID" ] && stop_serve
    [ -n "$PF_STARTED" ] && postfix stop >/dev/null 2>&1
    purge_our_mail
    restore_postfix
    gpgconf --homedir "$WORK/gnupg" --kill gpg-agent >/dev/null 2>&1
    [ -n "$PF_WAS_RUNNING" ] && postfix start >/dev/null 2>&1
    rm -f /var/mail/regmail /var/mail/registrar1001 /var/mail/registrar1002 /var/mail/registrar1003
    if [ "$rc" = 0 ] && [ -z "${REGMAIL_E2E_KEEP:-}" ]; then
        rm -rf "$WORK" "$PFLOG"
    else
        [ -f "$PFLOG" ] && mv "$PFLOG" "$WORK/postfix.log"
        echo "kept $WORK for inspection (postfix.log, data/, sent/, replies/)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A run killed before its clean-up left Postfix configured: undo that first.
if [ -d "$BACKUP" ]; then
    say "restoring the Postfix configuration a killed run left behind"
    postfix stop >/dev/null 2>&1 || true
    restore_postfix
fi
if postfix status >/dev/null 2>&1; then
    PF_WAS_RUNNING=1
    postfix stop >/dev/null
fi
purge_our_mail

# --- users ------------------------------------------------------------------
# The test's own system users; their homes are in this run's work directory.
ensure_user() {
    local user=$1 home="$WORK/home/$1" gecos
    if getent passwd "$user" >/dev/null; then
        gecos=$(getent passwd "$user" | cut -d: -f5)
        [ "$gecos" = "$MARK" ] ||
            fail "user $user exists and was not made by this test (GECOS '$gecos'): not touching it"
        usermod --home "$home" "$user"
    else
        useradd --system --user-group --comment "$MARK" --home-dir "$home" \
            --no-create-home --shell /usr/sbin/nologin "$user"
    fi
    install -d -o "$user" -g "$user" -m 755 "$home"
}
mkdir -p "$WORK"/{bin,home,keys,postfix,sent,gnupg}
chmod 700 "$WORK/gnupg"
ensure_user regmail
rm -f /var/mail/regmail
for r in "${REGISTRARS[@]}"; do
    ensure_user "registrar${r%%:*}"
    rm -f "/var/mail/registrar${r%%:*}"
done
as_regmail() { runuser -u regmail -- "$@"; }

# --- the registry -------------------------------------------------------------
install -m 755 "$TARGET/debug/regmail" "$BIN"
install -d -o regmail -g regmail -m 750 "$DATA"
as_regmail "$BIN" --data-dir "$DATA" init >/dev/null
sed -i -e '/^\[delivery\]$/a transport = "sendmail"\nsendmail_command = "/usr/sbin/sendmail"' \
    -e '/^\[database\]$/a busy_timeout_ms = 500' "$DATA/regmail.toml"
grep -q '^transport = "sendmail"$' "$DATA/regmail.toml" || fail "regmail.toml: [delivery] not found"
grep -q '^busy_timeout_ms = 500$' "$DATA/regmail.toml" || fail "regmail.toml: [database] not found"
for r in "${REGISTRARS[@]}"; do
    IFS=: read -r id key name <<<"$r"
    install -m 644 "$ROOT/keys/$key.pub.asc" "$WORK/keys/"
    as_regmail "$BIN" --data-dir "$DATA" registrar add --id "$id" --name "$name" \
        --email "registrar$id@registrars.test" --key "$WORK/keys/$key.pub.asc" >/dev/null
done
as_regmail "$BIN" --data-dir "$DATA" key export >"$WORK/registry.asc"
export GNUPGHOME="$WORK/gnupg"
gpg --batch --quiet --no-autostart --import "$WORK/registry.asc" 2>/dev/null
FPR=$(gpg --batch --no-autostart --with-colons --fingerprint | awk -F: '/^fpr/ { print $10; exit }')
[ -n "$FPR" ] || fail "the registry certificate did not import into gpg"
say "registry in $DATA, key $FPR"

# --- Postfix --------------------------------------------------------------------
mkdir -p "$BACKUP"
cp -p /etc/postfix/main.cf /etc/postfix/master.cf "$BACKUP/"
printf '%s regmail:\n' "$ROBOT" >"$WORK/postfix/transport"
printf '%s OK\n' "$ROBOT" >"$WORK/postfix/relay_recipients"
postmap "$WORK/postfix/transport" "$WORK/postfix/relay_recipients"
: >"$PFLOG"
postconf -e \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "myhostname = mx.registry-e2e.test" \
    "mydestination = \$myhostname, localhost, registrars.test" \
    "relay_domains = registry.example" \
    "relay_recipient_maps = hash:$WORK/postfix/relay_recipients" \
    "transport_maps = hash:$WORK/postfix/transport" \
    "default_transport = error" \
    "relay_transport = error" \
    "smtpd_relay_restrictions = reject_unauth_destination" \
    "mailbox_command = /usr/bin/procmail -a \"\$EXTENSION\"" \
    "maillog_file = $PFLOG" \
    "queue_run_delay = 10s" \
    "minimal_backoff_time = 10s" \
    "maximal_backoff_time = 20s"
postconf -M "regmail/unix=regmail unix - n n - 4 pipe flags=Rq user=regmail argv=$BIN --data-dir $DATA process"
cat >"$WORK/home/regmail/.procmailrc" <<EOF
SHELL=/bin/sh

:0 w
| $BIN --data-dir $DATA process

# regmail did not take the mail (exit 75: nothing was written): the MTA keeps it and retries
:0 e
{ EXITCODE=75 HOST }
EOF
chown regmail:regmail "$WORK/home/regmail/.procmailrc"
chmod 644 "$WORK/home/regmail/.procmailrc"
newaliases
postfix check
[ -x /usr/lib/postfix/configure-instance.sh ] && /usr/lib/postfix/configure-instance.sh -
postfix start >/dev/null 2>&1 || fail "postfix start failed: $(tail -5 "$PFLOG")"
PF_STARTED=1
for _ in $(seq 50); do
    "$PY" -c 'import socket; socket.create_connection(("127.0.0.1", 25), 1).close()' 2>/dev/null && break
    sleep 0.2
done
say "postfix $(postconf -h mail_version) listening on 127.0.0.1:25"

# Relay nothing: unknown addresses of the robot's domain and foreign domains are refused.
for rcpt in "nobody@registry.example" "someone@example.com"; do
    answer=$("$PY" "$HELPER" refused "$rcpt") || fail "Postfix accepted RCPT TO:<$rcpt>: $answer"
    say "RCPT TO:<$rcpt> refused: $answer"
done

# --- helpers ------------------------------------------------------------------------
SENT=() # client-trids in submission order

# submit KEY REGISTRAR TEMPLATE RCPT [SED]: sign the template now and send it over SMTP.
submit() {
    local key=$1 id=$2 name=$3 rcpt=$4 sed_expr=${5:-} trid
    local text="$WORK/sent/$name.txt" mail="$WORK/sent/$name.eml"
    sed -e "${sed_expr:-s/^//}" "$E2E/templates/$name.txt" >"$text"
    trid=$(sed -n 's/^<client-trid>\(.*\)<\/client-trid>$/\1/p' "$text")
    "$BIN" submit --key "$ROOT/keys/$key.sec.asc" --registrar "$id" \
        --from "registrar$id@registrars.test" "$text" >"$mail"
    "$PY" "$HELPER" send "registrar$id@registrars.test" "$rcpt" "$mail" ||
        fail "SMTP submission of $name refused"
    cp "$mail" "$WORK/sent/$trid.eml"
    SENT+=("$trid")
    say "sent $trid ($name) as registrar $id to <$rcpt>"
}

# replies into $WORK/replies.tsv (file, mailbox, In-Reply-To, Subject, result,
# client-trid, server-trid, handle, avail, codes)
collect() {
    rm -rf "$WORK/replies"
    mkdir "$WORK/replies"
    "$PY" "$HELPER" replies "$WORK/replies" /var/mail/registrar1001 \
        /var/mail/registrar1002 /var/mail/registrar1003 >"$WORK/replies.tsv"
}

journal_count() { as_regmail "$PY" "$HELPER" journal "$DATA/regmail.sqlite" | wc -l; }

wait_replies() {
    local want=$1 deadline=$(($(date +%s) + TIMEOUT)) n
    while :; do
        collect
        n=$(wc -l <"$WORK/replies.tsv")
        [ "$n" -ge "$want" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "$n of $want replies after ${TIMEOUT}s; queue: $(postqueue -p | tail -n +2 | head -20)"
        sleep 0.5
    done
}

# expect TRID MAILBOX RESULT [CODE...]: exactly one reply, in that mailbox, signed
# by the registry, answering the submitted mail, with that result and codes.
REPLY_HANDLE=
REPLY_AVAIL=
expect() {
    local trid=$1 box=$2 want=$3 line n file mbox irt subject result ctrid strid codes msgid
    shift 3
    n=$(awk -F'\t' -v t="$trid" '$6 == t' "$WORK/replies.tsv" | wc -l)
    [ "$n" = 1 ] || fail "$trid: $n replies, expected exactly 1"
    line=$(awk -F'\t' -v t="$trid" '$6 == t' "$WORK/replies.tsv")
    IFS=$'\t' read -r file mbox irt subject result ctrid strid REPLY_HANDLE REPLY_AVAIL codes <<<"$line"
    [ "$mbox" = "$box" ] || fail "$trid: reply in $mbox, expected $box"
    [ "$result" = "$want" ] || fail "$trid: result $result, expected $want ($codes)"
    [[ $subject == "REGISTRY: $want "*" [$trid]" ]] || fail "$trid: Subject $subject"
    for code in "$@"; do
        [[ ",$codes," == *",$code,"* ]] || fail "$trid: code $code missing in $codes"
    done
    msgid=$(sed -n 's/^Message-ID: //p' "$WORK/sent/$trid.eml" | tr -d '\r')
    [ "$irt" = "$msgid" ] || fail "$trid: In-Reply-To $irt, expected $msgid"
    gpg --batch --no-autostart --status-fd 1 --verify "$file" 2>/dev/null | grep -q "^\[GNUPG:\] VALIDSIG .*$FPR" ||
        fail "$trid: the reply's signature does not verify with the registry key: $file"
    say "reply $strid to $ctrid in /var/mail/$mbox: $result ${codes} (signature good)"
}

# --- 1. the pipe(8) transport, replies through sendmail ---------------------------------
submit alice 1001 a1-perscreate-holder "$ROBOT"
submit alice 1001 a2-perscreate-tech "$ROBOT"
submit bob 1002 b1-check-free "$ROBOT"
submit carol 1003 c1-perscreate "$ROBOT"
submit alice 1001 a4-create-with-errors "$ROBOT"
wait_replies 5
expect E2E-A1 registrar1001 success 1000
HOLDER=$REPLY_HANDLE
expect E2E-A2 registrar1001 success 1000
TECH=$REPLY_HANDLE
expect E2E-B1 registrar1002 success 1000
[ "$REPLY_AVAIL" = yes ] || fail "E2E-B1: avail $REPLY_AVAIL, expected yes"
expect E2E-C1 registrar1003 success 1000
expect E2E-A4 registrar1001 failed 5202 5203 5212 5207 5205 5204
# A template that depends on the handles the first replies reported.
submit alice 1001 a3-create-domain "$ROBOT" "s/@HOLDER@/$HOLDER/;s/@TECH@/$TECH/"
wait_replies 6
expect E2E-A3 registrar1001 success 1000

# --- 2. procmail ----------------------------------------------------------------------------
submit bob 1002 b2-perscreate "$PROCMAIL_ROBOT"
wait_replies 7
expect E2E-B2 registrar1002 success 1000
[ "$(journal_count)" = 7 ] || fail "journal rows: $(journal_count), expected 7"

# --- 3. exit 75: Postfix keeps the mail, retries, and it is handled once ----------------------
rm -f "$WORK/release"
as_regmail "$PY" "$HELPER" lock "$DATA/regmail.sqlite" "$WORK/release" 600 >"$WORK/lock.out" &
LOCK_PID=$!
for _ in $(seq 100); do
    grep -q locked "$WORK/lock.out" && break
    sleep 0.1
done
grep -q locked "$WORK/lock.out" || fail "could not lock the database"
say "database write-locked (busy_timeout_ms = 500)"
submit carol 1003 c2-check-taken "$ROBOT"
submit alice 1001 a5-check-free "$PROCMAIL_ROBOT"
# Both wait in the deferred queue, and Postfix tries each at least twice.
deadline=$(($(date +%s) + TIMEOUT))
while :; do
    postqueue -j | "$PY" "$HELPER" queue >"$WORK/queue.txt"
    ok=1
    for rcpt in "$ROBOT" "$PROCMAIL_ROBOT"; do
        id=$(awk -v r="$rcpt" '$2 == "deferred" && $3 == r { print $1 }' "$WORK/queue.txt")
        if [ -z "$id" ] || [ "$(grep -c "$id: to=<$rcpt>.*status=deferred" "$PFLOG")" -lt 2 ]; then
            ok=
        fi
    done
    [ -n "$ok" ] && break
    [ "$(date +%s)" -lt "$deadline" ] ||
        fail "the locked-out mails were not deferred and retried: $(cat "$WORK/queue.txt"); $(grep status= "$PFLOG" | tail -4)"
    sleep 1
done
for rcpt in "$ROBOT" "$PROCMAIL_ROBOT"; do
    id=$(awk -v r="$rcpt" '$2 == "deferred" && $3 == r { print $1 }' "$WORK/queue.txt")
    say "deferred $id to <$rcpt>, $(grep -c "$id: to=<$rcpt>.*status=deferred" "$PFLOG") attempts: $(grep "$id: to=<$rcpt>.*status=deferred" "$PFLOG" | tail -1 | sed 's/.*status=deferred //')"
done
collect
[ "$(wc -l <"$WORK/replies.tsv")" = 7 ] || fail "a reply came while the database was locked"
touch "$WORK/release"
wait "$LOCK_PID" || fail "the lock holder failed"
LOCK_PID=
[ "$(journal_count)" = 7 ] || fail "a locked-out mail was journaled: $(journal_count) rows"
say "lock released; postqueue -f"
postqueue -f
wait_replies 9
expect E2E-C2 registrar1003 success 1000
[ "$REPLY_AVAIL" = no ] || fail "E2E-C2: avail $REPLY_AVAIL, expected no"
expect E2E-A5 registrar1001 success 1000
[ "$REPLY_AVAIL" = yes ] || fail "E2E-A5: avail $REPLY_AVAIL, expected yes"

# --- 4. regmail serve: process hands each mail over, by both routes -----------------------------
as_regmail env REGMAIL_LOG=info "$BIN" --data-dir "$DATA" serve >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do
    grep -q "^listening on " "$WORK/serve.out" && break
    sleep 0.1
done
grep -q "^listening on $DATA/regmail.sock$" "$WORK/serve.out" || fail "regmail serve did not start: $(cat "$WORK/serve.log")"
say "regmail serve $(cat "$WORK/serve.out")"
submit bob 1002 b1-check-free "$ROBOT" "s/E2E-B1/E2E-S1/"
submit carol 1003 c1-perscreate "$PROCMAIL_ROBOT" "s/E2E-C1/E2E-S2/"
wait_replies 11
expect E2E-S1 registrar1002 success 1000
expect E2E-S2 registrar1003 success 1000
[ "$(grep -c 'mail handled.*result="success"' "$WORK/serve.log")" = 2 ] ||
    fail "regmail serve did not handle both mails: $(cat "$WORK/serve.log")"
stop_serve
say "both handled by regmail serve (its log), replies through sendmail"

# --- 5. the smtp transport: replies to Postfix over SMTP, plain and with STARTTLS -----------------
# Postfix offers STARTTLS from here on, with a certificate for localhost from a CA made
# for this run. First regmail delivers as contrib/README.md has the systemd units do
# (plain SMTP to localhost:25: no TLS although offered), then with STARTTLS, trusting
# that CA alone (smtp_ca_file). A reply by SMTP enters Postfix through smtpd, never
# through pickup (where the sendmail transport's replies enter).
TLS="$WORK/tls"
mkdir -p "$TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=regmail e2e relay CA" -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$TLS/relay.key" -out "$TLS/relay.csr" 2>/dev/null
printf 'subjectAltName = DNS:localhost\nextendedKeyUsage = serverAuth\n' >"$TLS/ext"
openssl x509 -req -in "$TLS/relay.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
    -days 2 -extfile "$TLS/ext" -out "$TLS/relay.pem" 2>/dev/null
chmod 644 "$TLS/ca.pem"
postconf -e "smtpd_tls_cert_file = $TLS/relay.pem" "smtpd_tls_key_file = $TLS/relay.key" \
    "smtpd_tls_security_level = may" "smtpd_tls_loglevel = 1"
postfix reload >/dev/null 2>&1
# Until the reloaded smtpd answers STARTTLS with the new certificate.
for _ in $(seq 50); do
    echo QUIT | openssl s_client -quiet -starttls smtp -connect 127.0.0.1:25 -servername localhost \
        -verify_hostname localhost -CAfile "$TLS/ca.pem" -verify_return_error >/dev/null 2>&1 && break
    sleep 0.2
done
echo QUIT | openssl s_client -quiet -starttls smtp -connect 127.0.0.1:25 -servername localhost \
    -verify_hostname localhost -CAfile "$TLS/ca.pem" -verify_return_error >/dev/null 2>&1 ||
    fail "Postfix does not offer STARTTLS with the run's certificate"
tls_sessions() { grep -c 'TLS connection established from localhost' "$PFLOG" || true; }
picked_up() { grep -c 'postfix/pickup.*from=<robot@registry.example>' "$PFLOG" || true; }
sed -i -e 's|^transport = "sendmail"$|transport = "smtp"\nsmtp_host = "localhost"\nsmtp_port = 25\nsmtp_starttls = false|' \
    "$DATA/regmail.toml"
grep -q '^transport = "smtp"$' "$DATA/regmail.toml" || fail "regmail.toml: transport not switched"
say "regmail delivers by smtp to localhost:25 (contrib/README.md's setting); Postfix offers STARTTLS"
PICKED=$(picked_up)
[ "$PICKED" -gt 0 ] || fail "no pickup line for the sendmail replies: the check below would prove nothing"
TLS_BEFORE=$(tls_sessions)
submit bob 1002 b1-check-free "$ROBOT" "s/E2E-B1/E2E-T1/"
wait_replies 12
expect E2E-T1 registrar1002 success 1000
[ "$(tls_sessions)" = "$TLS_BEFORE" ] || fail "TLS without smtp_starttls"
sed -i -e 's|^smtp_starttls = false$|smtp_starttls = true\nsmtp_ca_file = "'"$TLS/ca.pem"'"|' \
    "$DATA/regmail.toml"
grep -q '^smtp_starttls = true$' "$DATA/regmail.toml" || fail "regmail.toml: STARTTLS not switched on"
say "regmail delivers by smtp to localhost:25, STARTTLS, trusting only $TLS/ca.pem"
submit bob 1002 b1-check-free "$ROBOT" "s/E2E-B1/E2E-T2/"
wait_replies 13
expect E2E-T2 registrar1002 success 1000
[ "$(tls_sessions)" -gt "$TLS_BEFORE" ] || fail "the reply did not come over TLS: $(grep smtpd "$PFLOG" | tail -5)"
[ "$(picked_up)" = "$PICKED" ] || fail "a reply entered Postfix through pickup (sendmail), not SMTP"
say "replies E2E-T1 and E2E-T2 entered Postfix by SMTP (none through pickup); E2E-T2 over TLS ($(grep 'TLS connection established from localhost' "$PFLOG" | tail -1 | sed 's/.*established from //'))"

# --- 6. nothing lost, nothing twice -------------------------------------------------------------
deadline=$(($(date +%s) + TIMEOUT))
until [ -z "$(postqueue -j)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "Postfix's queue did not empty: $(postqueue -p)"
    sleep 0.5
done
sleep 2 # a stray duplicate would have arrived by now
collect
as_regmail "$PY" "$HELPER" journal "$DATA/regmail.sqlite" >"$WORK/journal.tsv"
as_regmail "$PY" "$HELPER" outbox "$DATA/regmail.sqlite" >"$WORK/outbox.tsv"
N=${#SENT[@]}
[ "$(wc -l <"$WORK/journal.tsv")" = "$N" ] || fail "journal: $(wc -l <"$WORK/journal.tsv") rows for $N mails"
[ "$(cut -f4 "$WORK/journal.tsv" | sort -u | wc -l)" = "$N" ] || fail "journal: a client-trid twice"
[ "$(cut -f2 "$WORK/journal.tsv" | sort -u)" = transaction ] || fail "journal: not all transactions: $(cut -f2 "$WORK/journal.tsv" | sort | uniq -c)"
[ "$(printf '%s\n' "${SENT[@]}" | sort)" = "$(cut -f4 "$WORK/journal.tsv" | sort)" ] ||
    fail "journal client-trids differ from the mails sent"
[ "$(wc -l <"$WORK/replies.tsv")" = "$N" ] || fail "$(wc -l <"$WORK/replies.tsv") replies for $N mails"
[ "$(cut -f7 "$WORK/replies.tsv" | sort)" = "$(cut -f1 "$WORK/journal.tsv" | sort)" ] ||
    fail "the replies' server-trids differ from the journal's"
[ "$(wc -l <"$WORK/outbox.tsv")" = "$N" ] || fail "outbox: $(wc -l <"$WORK/outbox.tsv") mails for $N"
! awk -F'\t' '$3 == "-"' "$WORK/outbox.tsv" | grep -q . || fail "outbox: undelivered mail: $(awk -F'\t' '$3 == "-"' "$WORK/outbox.tsv")"
[ ! -s /var/mail/regmail ] || fail "mail fell through procmail into /var/mail/regmail"
say "$N mails sent, $N journal rows, $N replies delivered, none twice; Postfix queue empty"

T_TEST=$(($(date +%s) - T_TEST0))
echo "PASS: regmail behind Postfix ($N mails; install ${T_INSTALL}s, build ${T_BUILD}s, test ${T_TEST}s, total $(($(date +%s) - START))s)"
