// The source of the precompiled-header targets (cmake/storewatch-pch.cmake):
// CMake compiles a target's precompiled header for its sources, so each
// needs one.
namespace storewatch::pch_anchor {}
