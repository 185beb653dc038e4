//! Links libdpkg (static, as Debian ships it) and librpm, and compiles the shim
//! that calls dpkg's `parseversion` the way `dpkg --compare-versions` does.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    let missing = |what: &str, package: &str, error: pkg_config::Error| -> ! {
        panic!(
            "vercmp-reference needs {what}: install Debian's {package} \
             (`cargo xtask setup` does): {error}"
        )
    };
    let dpkg = pkg_config::Config::new()
        .statik(true)
        .probe("libdpkg")
        .unwrap_or_else(|e| missing("libdpkg", "libdpkg-dev", e));
    let rpm = pkg_config::Config::new()
        .probe("rpm")
        .unwrap_or_else(|e| missing("librpm", "librpm-dev", e));
    let mut build = cc::Build::new();
    build
        .file("src/shim.c")
        .define("LIBDPKG_VOLATILE_API", "1")
        .opt_level(2);
    for path in dpkg.include_paths.iter().chain(&rpm.include_paths) {
        build.include(path);
    }
    build.compile("vercmp_shim");
}
