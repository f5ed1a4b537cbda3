// Kiezbox uplink payload formatter for The Things Stack (TTN): paste into the application's or the device's
// "Uplink payload formatter" as "Custom Javascript formatter". Decodes the compact format version 1:
// FPort 10 = box report, FPort 11 = crisis summary. Layout: docs/lorawan.md in the Kiezbox repository.
// Plain ES5 (The Things Stack runs formatters in a sandbox); the Swift encoder's tests run this file with node.

var KIEZBOX_VERSION = 1;

// One fixed-point field: value = (offset * scale + raw) / scale, raw big-endian in `bytes` bytes.
function kiezboxField(name, bytes, signed, scale, offset, minimumRaw, maximumRaw) {
  var bits = 8 * bytes;
  return {
    name: name, bytes: bytes, signed: signed, scale: scale, offset: offset,
    minimumRaw: minimumRaw !== undefined ? minimumRaw : (signed ? -Math.pow(2, bits - 1) : 0),
    maximumRaw: maximumRaw !== undefined ? maximumRaw : (signed ? Math.pow(2, bits - 1) - 1 : Math.pow(2, bits) - 1)
  };
}

// The report's fields in presence-bit order (bit 0 first).
var KIEZBOX_REPORT_FIELDS = [
  kiezboxField("temperature", 2, true, 100, 0),          // °C, 0.01
  kiezboxField("relative_humidity", 1, false, 2, 0, 0, 200), // %, 0.5
  kiezboxField("pressure", 2, false, 50, 300),           // hPa, 0.02, from 300
  kiezboxField("pm2_5", 2, false, 10, 0),                // µg/m³, 0.1
  kiezboxField("pm10", 2, false, 10, 0),                 // µg/m³, 0.1
  kiezboxField("co2", 2, false, 1, 0),                   // ppm, 1
  kiezboxField("battery_voltage", 2, false, 100, 0),     // V, 0.01
  kiezboxField("battery_level", 1, false, 1, 0, 0, 100)  // %, 1
];

// The crisis summary's optional fields in presence-bit order, then one count per category.
var KIEZBOX_SUMMARY_FIELDS = [
  kiezboxField("battery_level", 1, false, 1, 0, 0, 100),
  kiezboxField("battery_voltage", 2, false, 100, 0),
  kiezboxField("phones_connected", 2, false, 1, 0)
];
var KIEZBOX_CATEGORIES = ["medical", "fire", "food", "water", "power", "other"];
var KIEZBOX_COUNT_FIELD = kiezboxField("count", 1, false, 1, 0);

function KiezboxPayloadError(message) { this.message = message; }

function kiezboxReader(bytes) {
  var reader = { bytes: bytes, offset: 0 };
  reader.byte = function () {
    if (reader.offset >= bytes.length) {
      throw new KiezboxPayloadError("the payload has " + bytes.length + " bytes where its header announces at least " + (reader.offset + 1));
    }
    return bytes[reader.offset++];
  };
  reader.value = function (field) {
    var end = reader.offset + field.bytes;
    if (end > bytes.length) {
      throw new KiezboxPayloadError("the payload has " + bytes.length + " bytes where its header announces at least " + end);
    }
    var raw = 0;
    for (; reader.offset < end; reader.offset++) { raw = raw * 256 + bytes[reader.offset]; }
    if (field.signed && raw >= Math.pow(2, 8 * field.bytes - 1)) { raw -= Math.pow(2, 8 * field.bytes); }
    if (raw < field.minimumRaw || raw > field.maximumRaw) {
      throw new KiezboxPayloadError(field.name + " holds " + raw + ", which the format never sends");
    }
    return (field.offset * field.scale + raw) / field.scale;
  };
  reader.finish = function () {
    if (reader.offset !== bytes.length) {
      throw new KiezboxPayloadError("the payload has " + bytes.length + " bytes where its header announces " + reader.offset);
    }
  };
  return reader;
}

// The first byte: version (bits 7-5), value clamped, help requests open, on battery, mains present, crisis (bit 0).
function kiezboxHeader(reader, data) {
  if (reader.bytes.length === 0) { throw new KiezboxPayloadError("the payload is empty"); }
  var first = reader.byte();
  var version = first >> 5;
  if (version !== KIEZBOX_VERSION) {
    throw new KiezboxPayloadError("not a Kiezbox payload of a known version (version " + version + ")");
  }
  data.version = version;
  data.mode = (first & 0x01) ? "crisis" : "normal";
  data.mains_present = (first & 0x02) !== 0;
  data.on_battery = (first & 0x04) !== 0;
  data.help_requests_open = (first & 0x08) !== 0;
  data.value_clamped = (first & 0x10) !== 0;
}

function kiezboxDecodeReport(reader, data) {
  data.message = "report";
  kiezboxHeader(reader, data);
  var presence = reader.byte();
  for (var bit = 0; bit < KIEZBOX_REPORT_FIELDS.length; bit++) {
    if (presence & (1 << bit)) {
      data[KIEZBOX_REPORT_FIELDS[bit].name] = reader.value(KIEZBOX_REPORT_FIELDS[bit]);
    }
  }
  reader.finish();
}

function kiezboxDecodeCrisisSummary(reader, data) {
  data.message = "crisis_summary";
  kiezboxHeader(reader, data);
  var presence = reader.byte();
  if (presence & 0xF8) { throw new KiezboxPayloadError("reserved bits are set in byte 1"); }
  for (var bit = 0; bit < KIEZBOX_SUMMARY_FIELDS.length; bit++) {
    if (presence & (1 << bit)) {
      data[KIEZBOX_SUMMARY_FIELDS[bit].name] = reader.value(KIEZBOX_SUMMARY_FIELDS[bit]);
    }
  }
  data.open_help_requests = {};
  for (var index = 0; index < KIEZBOX_CATEGORIES.length; index++) {
    data.open_help_requests[KIEZBOX_CATEGORIES[index]] = reader.value(KIEZBOX_COUNT_FIELD);
  }
  reader.finish();
}

function decodeUplink(input) {
  var data = {};
  var warnings = [];
  try {
    var reader = kiezboxReader(input.bytes);
    if (input.fPort === 10) {
      kiezboxDecodeReport(reader, data);
    } else if (input.fPort === 11) {
      kiezboxDecodeCrisisSummary(reader, data);
    } else {
      return { errors: ["FPort " + input.fPort + " is not a Kiezbox compact payload (10 report, 11 crisis summary)"] };
    }
  } catch (error) {
    if (error instanceof KiezboxPayloadError) { return { errors: [error.message] }; }
    throw error;
  }
  if (data.value_clamped) {
    warnings.push("a value was outside the format's range and is sent as the nearest limit");
  }
  return { data: data, warnings: warnings };
}

// node (the tests) loads this file as a module; The Things Stack has no `module` and ignores this.
if (typeof module !== "undefined") { module.exports = { decodeUplink: decodeUplink }; }
