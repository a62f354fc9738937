#!/usr/bin/env bash
# Regenerates the app and tray icons with ImageMagick (kept in git; run only to change them).
# The mark: an airlock door — a rounded frame split down the middle with a round porthole.
set -euo pipefail
cd "$(dirname "$0")"

# App icon, 1024 px master: blue tile, white door.
convert -size 1024x1024 gradient:'#3b82f6'-'#1e3a8a' \
  \( -size 1024x1024 xc:black -fill white -draw "roundrectangle 64,64 960,960 200,200" \) \
  -alpha off -compose CopyOpacity -composite -compose Over \
  -fill none -stroke white -strokewidth 56 -draw "roundrectangle 292,212 732,852 60,60" \
  -draw "line 512,236 512,828" \
  -fill '#1e40af' -stroke white -strokewidth 40 -draw "circle 512,420 512,510" \
  -stroke white -strokewidth 40 -draw "line 400,690 452,690" -draw "line 572,690 624,690" \
  -depth 8 PNG32:app-1024.png
for s in 32 128 256; do convert app-1024.png -resize ${s}x${s} PNG32:${s}x${s}.png; done
cp 256x256.png 128x128@2x.png
convert app-1024.png -resize 512x512 PNG32:icon.png
convert app-1024.png -define icon:auto-resize=256,128,64,48,32,16 icon.ico
# macOS .icns (png2icns from Debian's icnsutils).
convert app-1024.png -resize 512x512 PNG32:icon-512.png
convert app-1024.png -resize 256x256 PNG32:icon-256.png
convert app-1024.png -resize 16x16 PNG32:icon-16.png
png2icns icon.icns icon-512.png icon-256.png 128x128.png 32x32.png icon-16.png >/dev/null
rm icon-512.png icon-256.png icon-16.png
rm app-1024.png

# Tray icons, drawn at 4x and reduced. Template (black + alpha) for the macOS menu bar;
# a filled dark tile for Linux panels, which may be light or dark.
door=(-fill none -stroke black -strokewidth 22 -draw "roundrectangle 58,26 198,230 24,24"
  -draw "line 128,36 128,220" -strokewidth 18 -draw "circle 128,96 128,124")
convert -size 256x256 xc:none "${door[@]}" -resize 32x32 PNG32:tray-template.png
convert -size 256x256 xc:none "${door[@]}" -strokewidth 22 -draw "line 20,236 236,20" \
  -resize 32x32 PNG32:tray-template-off.png
tile() { # $1 tile colour, $2 output, $3 badge colour or "none"
  local badge=()
  [ "$3" != none ] && badge=(-stroke white -strokewidth 10 -fill "$3" -draw "circle 196,196 196,244")
  convert -size 256x256 xc:none -fill "$1" -draw "roundrectangle 8,8 248,248 48,48" \
    -fill none -stroke white -strokewidth 20 \
    -draw "roundrectangle 68,34 188,222 22,22" -draw "line 128,44 128,212" \
    -strokewidth 16 -draw "circle 128,98 128,122" "${badge[@]}" -resize 32x32 "PNG32:$2"
}
tile '#1e3a8a' tray.png none
tile '#6b7280' tray-off.png none
tile '#1e3a8a' tray-pending.png '#f59e0b'
tile '#991b1b' tray-error.png none
