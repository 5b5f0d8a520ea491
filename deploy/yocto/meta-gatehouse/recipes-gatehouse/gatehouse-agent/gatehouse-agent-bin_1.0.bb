# gatehouse-agent installed from the .deb built outside Yocto:
#
#   go run ./deploy/deb --arch arm64 --version 1.0 \
#       --out deploy/yocto/meta-gatehouse/recipes-gatehouse/gatehouse-agent/files/
#
# The binary is static (CGO_ENABLED=0), so it needs nothing from the image
# but a kernel. bitbake unpacks the .deb's data archive into ${S}.
require gatehouse-agent.inc

GATEHOUSE_DEB_ARCH = "${@{'aarch64': 'arm64', 'arm': 'armhf', 'x86_64': 'amd64', 'i586': 'i386', 'i686': 'i386', 'riscv64': 'riscv64'}.get(d.getVar('TARGET_ARCH'), d.getVar('TARGET_ARCH'))}"

SRC_URI = "file://gatehouse-agent_${PV}_${GATEHOUSE_DEB_ARCH}.deb;subdir=gatehouse-agent-deb"
S = "${gatehouse_sources_dir}/gatehouse-agent-deb"

RPROVIDES:${PN} = "gatehouse-agent"
RCONFLICTS:${PN} = "gatehouse-agent"
RREPLACES:${PN} = "gatehouse-agent"

GATEHOUSE_UNIT_SRC = "${S}/usr/lib/systemd/system/gatehouse-agent.service"
GATEHOUSE_RENEW_SERVICE_SRC = "${S}/usr/lib/systemd/system/gatehouse-agent-renew.service"
GATEHOUSE_RENEW_TIMER_SRC = "${S}/usr/lib/systemd/system/gatehouse-agent-renew.timer"
GATEHOUSE_CONF_SRC = "${S}/etc/gatehouse/agent.conf"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${S}/usr/bin/gatehouse-agent ${D}${bindir}/gatehouse-agent
}

# Go strips and links its own way.
INSANE_SKIP:${PN} += "already-stripped ldflags"
