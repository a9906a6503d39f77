// Unit tests of the wire model: ids, time, JSON readers and the error shape.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>

#include "schemas/ids.h"
#include "schemas/json_io.h"
#include "schemas/rest.h"
#include "schemas/time_format.h"

namespace meshwire {

TEST_CASE("RandomBase62 draws the requested length from the alphabet") {
  std::string id = RandomBase62(12);
  CHECK(id.size() == 12);
  CHECK(id.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") ==
        std::string::npos);
  CHECK(RandomBase62(12) != id);
}

TEST_CASE("tokens are mw_ and 40 base62 characters; only their SHA-256 is kept") {
  std::string t = NewTokenSecret();
  CHECK(t.rfind("mw_", 0) == 0);
  CHECK(t.size() == 43);
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // The thread's context is reused: each digest starts afresh.
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("names: 1-64 of A-Z a-z 0-9 . _ -") {
  CHECK(IsValidName("copilot-agent"));
  CHECK(IsValidName("a.b_c-9"));
  CHECK(IsValidName(std::string(64, 'x')));
  CHECK_FALSE(IsValidName(""));
  CHECK_FALSE(IsValidName(std::string(65, 'x')));
  CHECK_FALSE(IsValidName("has space"));
  CHECK_FALSE(IsValidName("slash/no"));
  CHECK_FALSE(IsValidName("émile"));
}

TEST_CASE("RFC 3339 with milliseconds, UTC, both ways") {
  CHECK(FormatRfc3339(0) == "1970-01-01T00:00:00.000Z");
  CHECK(FormatRfc3339(1795513283123) == "2026-11-24T09:41:23.123Z");
  CHECK(ParseRfc3339("2026-11-24T09:41:23.123Z") == std::optional<Millis>(1795513283123));
  CHECK_FALSE(ParseRfc3339("2026-11-24 09:21:23"));
  CHECK_FALSE(ParseRfc3339("2026-11-24T09:21:23.123+01:00"));
  // Leap days, year and century ends, before 1970: as gmtime_r says.
  const auto by_libc = [](Millis ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    int frac = static_cast<int>(ms % 1000);
    if (frac < 0) {
      frac += 1000;
      secs -= 1;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char out[80];
    std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return std::string(out);
  };
  CHECK(FormatRfc3339(951782400000) == "2000-02-29T00:00:00.000Z");
  CHECK(FormatRfc3339(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(FormatRfc3339(253402300799999) == "9999-12-31T23:59:59.999Z");
  std::uint64_t x = 88172645463325252ull;  // xorshift: the same spread of instants every run
  for (int i = 0; i < 200000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const auto ms = static_cast<Millis>(x % 253402300800000ull) - (i % 2 ? 62135596800000 : 0);  // 0001-9999
    CAPTURE(ms);
    REQUIRE(FormatRfc3339(ms) == by_libc(ms));
    if (ms >= 0) REQUIRE(ParseRfc3339(FormatRfc3339(ms)) == std::optional<Millis>(ms));
  }
}

TEST_CASE("ParseObject: a JSON object or an error that says so") {
  CHECK(ParseObject("").is_object());
  CHECK(ParseObject(R"({"a":1})")["a"] == 1);
  struct Case {
    const char* body;
    const char* why;
  };
  for (Case c : {Case{"{bad", "malformed"}, Case{"[1,2]", "an array"}, Case{"\"text\"", "a string"},
                 Case{"{\"a\":\"\xff\"}", "invalid UTF-8"}}) {
    CAPTURE(c.why);
    try {
      ParseObject(c.body);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.status() == 400);
      CHECK(e.code() == "invalid_json");
    }
  }
}

TEST_CASE("ParseObject: a key given twice in one object is refused (not read as its last value), at any depth") {
  // The same key in two objects is two keys.
  const Json ok = ParseObject(R"({"a":{"x":1},"b":{"x":2,"y":[{"x":3},{"x":4}]},"x":5})");
  CHECK(ok["b"]["x"] == 2);
  for (const char* body : {R"({"content":"a","content":"b"})", R"({"m":{"x":1,"y":2,"x":3}})",
                           R"({"l":[{"k":1},{"k":2,"k":2}]})", R"({"a":1,"b":{"a":2},"a":3})"}) {
    CAPTURE(body);
    try {
      ParseObject(body);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.status() == 400);
      CHECK(e.code() == "invalid_json");
      CHECK(std::string(e.what()).find("twice in one object") != std::string::npos);
    }
  }
  // A send's fast path hands a repeated field to the full parser, which refuses it.
  CHECK_THROWS_AS(OutgoingMessageFromBody(R"({"from":"a","content":"x","content":"y"})"), Error);
  // Many keys: checked in linear time, not pairwise.
  std::string many = "{";
  for (int i = 0; i < 200000; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
  many += ",\"7\":1}";
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(ParseObject(many), Error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

namespace {

/// What reading a send's body gives: the fields, or the error's status, code
/// and sentence.
std::string SendReading(std::string_view body, bool fast) {
  try {
    const OutgoingMessage m = fast ? OutgoingMessageFromBody(body) : OutgoingMessageFromJson(ParseObject(body));
    return ToJson(m).dump() + " metadata=" + m.metadata_json;
  } catch (const Error& e) {
    return std::to_string(e.status()) + " " + e.code() + " " + e.what();
  }
}

}  // namespace

TEST_CASE("a send's body reads the same with and without the flat fast path") {
  // Bodies the fast path reads itself.
  for (const char* body : {
           R"({"from":"a","to":"b","content":"hello"})",
           " {\n\t\"from\" : \"a\" ,\r\n \"content\":\"x\"\t}\n ",
           R"({"from":"a","content":"line\nbreak \"quoted\" back\\slash \/ \b\f\r\t"})",
           R"({"from":"a","content":"hé — 日本 🙂","priority":"high","reply_to":"m1","idempotency_key":"k"})",
           R"({"unknown":"x","from":"a","content":""})",
       }) {
    CAPTURE(std::string(body));
    CHECK(ParseFlatStringObject(body).has_value());
    CHECK(SendReading(body, true) == SendReading(body, false));
  }
  CHECK((*ParseFlatStringObject(R"({"k":"a\"b\\c"})"))[0].second == "a\"b\\c");
  // Bodies it leaves to the full parser, which answers or refuses them.
  for (const char* body : {
           "", "{}", "[]", "{bad", R"({"from":"a"})", R"({"from":"a","content":"x",})",
           R"({"from":"a","content":"\u00e9"})", R"({"from":"a","content":"x","to":null})",
           R"({"from":"a","content":"x","metadata":{"k":[1]}})", R"({"from":"a","content":"x","metadata":"s"})",
           R"({"from":"a","content":"x","to":"b","to":"c"})", R"({"from":1,"content":"x"})",
           R"({"from":"a","content":"x"} trailing)", "{\"from\":\"a\",\"content\":\"\xff\"}",
           "{\"from\":\"a\",\"content\":\"tab\there\"}", R"({"fr\u006fm":"a","content":"x"})",
           "\xEF\xBB\xBF{\"from\":\"a\",\"content\":\"x\"}", R"({"from":"a","content":"x\q"})",
           R"({"from":"a","content":"x)",
       }) {
    CAPTURE(std::string(body));
    CHECK(SendReading(body, true) == SendReading(body, false));
  }
  // Random edits of a send, each read both ways: the same fields or the same error.
  std::mt19937 rng(20261205);
  const std::string base = R"({"from":"a","to":"b","content":"x\ny","priority":"high"})";
  const std::string alphabet = "{}[]\":,\\ \tnu0a\x01\xc3\xa9\xff/";
  int fast_read = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string body = base;
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
      const std::size_t at = rng() % (body.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: body.insert(at, 1, c); break;
        case 1: if (at < body.size()) body[at] = c; break;
        default: if (at < body.size()) body.erase(at, 1); break;
      }
    }
    CAPTURE(body);
    if (ParseFlatStringObject(body)) ++fast_read;
    REQUIRE(SendReading(body, true) == SendReading(body, false));
  }
  CHECK(fast_read > 1000);  // the edits reached the fast path, not only the fallback
}

TEST_CASE("field readers name the field and the type expected") {
  Json body = Json::parse(R"({"name":"x","n":3,"meta":{"k":1},"arr":[1]})");
  CHECK(RequireString(body, "name") == "x");
  CHECK_FALSE(OptionalString(body, "missing"));
  CHECK(OptionalObjectText(body, "missing") == "{}");
  CHECK(OptionalObjectText(body, "meta") == R"({"k":1})");
  try {
    RequireString(body, "n");
    FAIL("accepted a number");
  } catch (const Error& e) {
    CHECK(e.code() == "invalid_field");
    CHECK(std::string(e.what()) == "The field \"n\" must be a string.");
  }
  CHECK_THROWS_AS(RequireString(body, "missing"), Error);
  CHECK_THROWS_AS(OptionalObjectText(body, "arr"), Error);
}

TEST_CASE("errors serialize to the contract's shape") {
  Error e = Error::NotFound("mesh_not_found", "No mesh x.");
  CHECK(ErrorBody(e) == R"({"error":{"code":"mesh_not_found","message":"No mesh x."}})");
  CHECK(Error::RateLimited(3).retry_after() == 3);
}

TEST_CASE("a message serializes with every field of the contract") {
  Message m{"1748123456789000", 42, "kR9xQpLmW3aZ", "abc123xyz", "copilot-agent", "all",
            std::nullopt, "Hello", "normal", R"({"reply_to":"1"})", 1795513283123};
  Json j = ToJson(m);
  for (const char* key : {"id", "seq", "mesh_id", "from", "from_name", "to", "to_name", "content",
                          "priority", "metadata", "created_at"}) {
    CAPTURE(key);
    CHECK(j.contains(key));
  }
  CHECK(j["to_name"].is_null());
  CHECK(j["metadata"]["reply_to"] == "1");
  CHECK(j["created_at"] == "2026-11-24T09:41:23.123Z");
}

TEST_CASE("MessageJsonText writes exactly what ToJson(message).dump() writes") {
  Message m;
  m.id = "1748123456789000";
  m.seq = 42;
  m.mesh_id = "kR9xQpLmW3aZ";
  m.from = "abc123xyz";
  m.from_name = "copilot-agent";
  m.to = "all";
  m.content = "Hello \"mesh\" \\ \n\t\r\b\f \x01\x1f caf\xC3\xA9 \xE2\x82\xAC";
  m.metadata_json = R"({"a":[1,{"b":null}],"reply_to":"17"})";
  m.created_at = 1795000000123;
  CHECK(MessageJsonText(m) == ToJson(m).dump());
  m.to = "def456uvw";
  m.to_name = "claude";
  m.metadata_json = "{}";
  m.priority = "urgent";
  CHECK(MessageJsonText(m) == ToJson(m).dump());
  m.metadata_json = "";  // not an object: shown as {} by both
  CHECK(MessageJsonText(m) == ToJson(m).dump());
  // Escapes first, last, alone and back to back; no escape at all; nothing.
  for (const char* content : {"", "\"", "\n\n", "\\x", "x\x02", "plain text, no escape", "\t\"\\\x7f\xC3\xA9"}) {
    m.content = content;
    CHECK(MessageJsonText(m) == ToJson(m).dump());
  }
}

}  // namespace meshwire
