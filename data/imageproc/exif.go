package imageproc

import (
	"bytes"
	"encoding/binary"
)

// exifOrientationTag is the TIFF/EXIF Orientation tag (274).
const exifOrientationTag = 0x0112

// jpegEXIF returns the TIFF payload of the first APP1 segment that starts
// with "Exif\x00\x00" (the one Pillow keeps), or nil. It scans the marker
// segments from SOI up to the first SOS and never reads out of bounds.
func jpegEXIF(data []byte) []byte {
	if len(data) < 4 || data[0] != 0xff || data[1] != 0xd8 {
		return nil
	}
	i := 2
	for i+1 < len(data) {
		if data[i] != 0xff {
			return nil
		}
		m := data[i+1]
		if m == 0xff { // fill byte
			i++
			continue
		}
		i += 2
		switch {
		case m == 0xd9 || m == 0xda: // EOI, SOS: no more headers
			return nil
		case m == 0x01 || (m >= 0xd0 && m <= 0xd7): // standalone markers
			continue
		}
		if i+2 > len(data) {
			return nil
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			return nil
		}
		seg := data[i+2 : i+n]
		if m == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return seg[6:]
		}
		i += n
	}
	return nil
}

// pngEXIF returns the payload of the first eXIf chunk of a PNG file, or nil.
func pngEXIF(data []byte) []byte {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(data, []byte(sig)) {
		return nil
	}
	i := len(sig)
	for i+8 <= len(data) {
		n64 := uint64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		if n64 > uint64(len(data)-i-8) {
			return nil
		}
		n := int(n64)
		body := data[i+8 : i+8+n]
		switch typ {
		case "eXIf":
			// Some writers keep the JPEG-style prefix; Pillow strips it.
			return bytes.TrimPrefix(body, []byte("Exif\x00\x00"))
		case "IEND":
			return nil
		}
		i += 8 + n + 4 // length, type, data, CRC
	}
	return nil
}

// exifOrientation reads the Orientation tag from IFD0 of a TIFF-structured
// EXIF block. ok is false when the block is malformed or has no usable tag.
func exifOrientation(tiff []byte) (orientation int, ok bool) {
	if len(tiff) < 8 {
		return 0, false
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0, false
	}
	if bo.Uint16(tiff[2:]) != 42 {
		return 0, false
	}
	off := uint64(bo.Uint32(tiff[4:]))
	if off+2 > uint64(len(tiff)) {
		return 0, false
	}
	n := uint64(bo.Uint16(tiff[off:]))
	for k := uint64(0); k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > uint64(len(tiff)) {
			return 0, false
		}
		ent := tiff[e : e+12]
		if bo.Uint16(ent) != exifOrientationTag {
			continue
		}
		typ, count := bo.Uint16(ent[2:]), bo.Uint32(ent[4:])
		if count != 1 {
			return 0, false
		}
		switch typ {
		case 3: // SHORT, stored in the first two bytes of the value field
			return int(bo.Uint16(ent[8:])), true
		case 4: // LONG
			return int(bo.Uint32(ent[8:])), true
		}
		return 0, false
	}
	return 0, false
}
