# Sourced by scripts/device_build.sh and scripts/build_before.sh: carry_libs BINARY copies into .carry/lib the Debian
# libraries BINARY links that the device's Ubuntu image lacks (Debian's cpp-httplib is a split build: its code is in
# the .so; older trees link it). device.sh puts .carry/lib on LD_LIBRARY_PATH.
carry_libs() {
  mkdir -p .carry/lib
  ldd "$1" | awk '/=> \// {print $3}' | { grep -E 'libcpp-httplib|libbrotli' || true; } | xargs -r -I{} cp -L {} .carry/lib/
}
