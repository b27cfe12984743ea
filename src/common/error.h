#pragma once
// One error type for the whole library: a code that callers (CLI exit codes, HTTP statuses, the C API) can switch on,
// and a message for people that says what went wrong, where, what was expected and what was found.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace orcd {

// The numeric values are part of the C API (include/orcd.h mirrors them); append, never renumber.
enum class ErrorCode : int32_t {
    Ok = 0,
    InvalidArgument = 1,  // a caller passed something out of range
    FileNotFound = 2,
    FileUnreadable = 3,      // exists but cannot be opened, stat'ed or mapped
    NotGguf = 4,             // bad magic
    UnsupportedVersion = 5,  // GGUF version other than 2 or 3
    Truncated = 6,           // a structure runs past the end of the file
    CorruptFile = 7,         // a value read from the file is out of its valid range
    MetadataMissing = 8,     // a required key is absent
    MetadataType = 9,        // a key holds a value of the wrong type
    UnsupportedArchitecture = 10,
    UnsupportedTensorType = 11,
    MissingTensor = 12,
    TensorShape = 13,
    InsufficientVram = 14,  // the plan does not fit the device (or --vram-limit)
    DeviceAlloc = 15,       // an allocation failed although the plan said it fits
    Transfer = 16,          // a host-to-device copy failed
    Cancelled = 17,
    NoDevice = 18,         // no GPU, or the index does not exist
    Device = 19,           // any other device runtime failure
    Tokenizer = 20,        // unsupported tokenizer model / pre-tokenizer, bad vocabulary
    ChatTemplate = 21,     // unrecognised chat template
    ContextOverflow = 22,  // prompt + requested tokens exceed the context
    Io = 23,               // writing a file failed
    Residency = 24,        // a weight allocation is not (or no longer) device memory
    Verify = 25,           // device checksum differs from the file
    Internal = 99,
};

// Stable, upper-case name of a code ("INSUFFICIENT_VRAM"), used in JSON output and logs.
std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

private:
    ErrorCode code_;
};

}  // namespace orcd
