#!/bin/sh
# Checks the Yocto layer (yocto/meta-afb-edge) against the project without
# bitbake: shrinkwrap vs package-lock.json, every dependency's license in the
# recipe, the files the recipe installs, the board profiles. Needs node and
# an installed node_modules (npm ci). scripts/check-yocto.mjs says what it
# checks; `scripts/check-yocto.sh --write` regenerates the generated parts.
here=$(dirname "$0")
exec node "$here/check-yocto.mjs" "$@"
