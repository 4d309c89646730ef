# What every recipe that builds afb-edge, or depends on it, needs: where the
# sources come from, and the one condition under which none of them can be
# built. Inherited by afb-edge and packagegroup-afb-edge; a recipe of yours
# that RDEPENDS on afb-edge (an image, a product packagegroup) inherits it too.
#
# Why the condition is shared: a recipe that is skipped provides nothing, so
# any recipe still requiring it breaks "bitbake world" ("Nothing RPROVIDES
# 'afb-edge'"), which every build that merely adds this layer runs into
# (yocto-check-layer's test_world). Skipped together, the layer adds nothing
# to world until it is configured.
#
# The layer travels inside the afb-edge repository and cannot name its own
# URL or commit: set them where the layer is used (local.conf, a bbappend,
# the distro). Until AFB_EDGE_GIT_URL is set these recipes are skipped with
# a message saying so (the default is a reserved .invalid name that never
# resolves).
AFB_EDGE_GIT_URL ??= "git://afb-edge.invalid/afb-edge.git;protocol=https"
AFB_EDGE_GIT_BRANCH ??= "main"

# The agent is a systemd service (StateDirectory=, DynamicUser=, the board
# drop-ins): without systemd the package would install no way to start it.
inherit features_check
REQUIRED_DISTRO_FEATURES:append = " systemd"

python __anonymous() {
    if '.invalid/' in (d.getVar('AFB_EDGE_GIT_URL') or ''):
        raise bb.parse.SkipRecipe("set AFB_EDGE_GIT_URL (and SRCREV:pn-afb-edge) to the afb-edge git repository, see the section 'Adding it to a build' of meta-afb-edge")
}
