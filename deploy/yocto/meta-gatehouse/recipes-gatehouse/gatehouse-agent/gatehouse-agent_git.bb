# gatehouse-agent built from source with Yocto's Go support.
#
# The module needs Go >= 1.26. Releases up to walnascar ship an older Go;
# use a layer that provides a newer go-native/go-cross, or the prebuilt
# recipe gatehouse-agent-bin (see deploy/yocto/README.md).
require gatehouse-agent.inc

# Point these at your repository and the commit to build (a bbappend or
# local.conf can set them). The placeholder SRCREV keeps parsing offline;
# "${AUTOREV}" follows the branch but asks the server at every parse.
GATEHOUSE_GIT_URL ?= "git://git.example.com/gatehouse.git;protocol=https;branch=main"
SRCREV ?= "0000000000000000000000000000000000000000"
PV = "0.0+git${SRCPV}"

GO_IMPORT = "gatehouse"
GO_INSTALL = "${GO_IMPORT}/cmd/gatehouse-agent"

inherit go-mod

# Anchor S and the checkout on ${BPN}, not the default ${BP}: PV contains
# SRCPV, which depends on SRC_URI, which would depend on S again.
S = "${gatehouse_sources_dir}/${BPN}"
GO_SRCURI_DESTSUFFIX = "${BPN}/src/${GO_IMPORT}/"
SRC_URI = "${GATEHOUSE_GIT_URL};destsuffix=${GO_SRCURI_DESTSUFFIX}"

# Modules are downloaded at compile time (go-mod class).
do_compile[network] = "1"

# A static binary: no cgo, no shared Go runtime.
export CGO_ENABLED = "0"
GO_LINKSHARED = ""
GO_EXTRA_LDFLAGS = "-X main.version=${PV}"

GATEHOUSE_UNIT_SRC = "${S}/src/${GO_IMPORT}/deploy/systemd/gatehouse-agent.service"
GATEHOUSE_RENEW_SERVICE_SRC = "${S}/src/${GO_IMPORT}/deploy/systemd/gatehouse-agent-renew.service"
GATEHOUSE_RENEW_TIMER_SRC = "${S}/src/${GO_IMPORT}/deploy/systemd/gatehouse-agent-renew.timer"
GATEHOUSE_CONF_SRC = "${S}/src/${GO_IMPORT}/deploy/agent.conf"

# go.bbclass installs the whole source tree for -dev packages; the agent
# needs only its binary.
do_install:append() {
    rm -rf ${D}${libdir}/go
}
