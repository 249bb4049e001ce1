#!/usr/bin/env bash
# Sign, notarize and staple the macOS app and .dmg with YOUR Apple Developer identity.
# Run on a Mac after `python packaging/build.py --installer`. Nothing here runs in CI.
#   IDENTITY="Developer ID Application: Your Name (TEAMID)"
#   NOTARY_PROFILE=name-of-a-profile-stored-with `xcrun notarytool store-credentials`
set -euo pipefail
: "${IDENTITY:?set IDENTITY to your Developer ID Application identity}"
: "${NOTARY_PROFILE:?set NOTARY_PROFILE (xcrun notarytool store-credentials)}"
APP="dist/Llama Launcher.app"
DMG=$(ls dist/LlamaLauncher-*.dmg | head -n1)
codesign --force --deep --options runtime --timestamp --sign "$IDENTITY" "$APP"
codesign --verify --deep --strict --verbose=2 "$APP"
codesign --force --timestamp --sign "$IDENTITY" "$DMG"
xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
xcrun stapler staple "$DMG"
spctl --assess --type open --context context:primary-signature -v "$DMG"
