#!/bin/sh
# Learner accounts for JupyterHub from the IMGBUILD_JUPYTERHUB_USERS secret: CSV lines
# `name,password[,admin]` (a header line `name,...` and blank lines are skipped). Each
# learner gets a login account with that password, a home from /etc/skel with `shared`
# linked to the read-only /srv/shared; JupyterHub admits exactly these accounts
# (/etc/jupyterhub/users) and makes the `admin` ones hub admins (/etc/jupyterhub/admins).
# DRY_RUN=1 prints the commands instead (tests); ROOT prefixes the files written.
set -eu
root="${ROOT:-}"
run() { if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
install -d -m 755 "$root/srv/shared" "$root/etc/jupyterhub" "$root/etc/skel"
ln -sfn /srv/shared "$root/etc/skel/shared"
: > "$root/etc/jupyterhub/users"
: > "$root/etc/jupyterhub/admins"
line=0
printf '%s\n' "${IMGBUILD_JUPYTERHUB_USERS:-}" | while IFS= read -r row; do
  line=$((line + 1))
  row=$(printf '%s' "$row" | tr -d '\r')
  case "$row" in ''|'#'*|name,*) continue ;; esac
  name=${row%%,*}
  rest=${row#*,}
  [ "$rest" != "$row" ] || { echo "jupyterhub-learners: line $line: \`$row\` is not name,password[,admin]" >&2; exit 1; }
  password=${rest%%,*}
  flag=""
  [ "$password" = "$rest" ] || flag=${rest#*,}
  if ! printf '%s' "$name" | grep -Eq '^[a-z_][a-z0-9_-]{0,31}$'; then
    echo "jupyterhub-learners: line $line: \`$name\` is not a login name (lower-case letters, digits, - and _)" >&2
    exit 1
  fi
  if [ -z "$password" ]; then
    echo "jupyterhub-learners: line $line: \`$name\` has no password" >&2
    exit 1
  fi
  case "$flag" in ''|admin) ;; *) echo "jupyterhub-learners: line $line: the third field is \`admin\` or empty, not \`$flag\`" >&2; exit 1 ;; esac
  # Learners' homes are their own: 0700, not the distribution's 0755.
  run useradd --create-home -K HOME_MODE=0700 --shell /bin/bash "$name"
  printf '%s:%s\n' "$name" "$password" | run chpasswd
  echo "$name" >> "$root/etc/jupyterhub/users"
  [ "$flag" != admin ] || echo "$name" >> "$root/etc/jupyterhub/admins"
done
