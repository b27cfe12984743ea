#include "common/error.h"

namespace orcd {

std::string_view error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::Ok: return "OK";
        case ErrorCode::InvalidArgument: return "INVALID_ARGUMENT";
        case ErrorCode::FileNotFound: return "FILE_NOT_FOUND";
        case ErrorCode::FileUnreadable: return "FILE_UNREADABLE";
        case ErrorCode::NotGguf: return "NOT_GGUF";
        case ErrorCode::UnsupportedVersion: return "UNSUPPORTED_VERSION";
        case ErrorCode::Truncated: return "TRUNCATED";
        case ErrorCode::CorruptFile: return "CORRUPT_FILE";
        case ErrorCode::MetadataMissing: return "METADATA_MISSING";
        case ErrorCode::MetadataType: return "METADATA_TYPE";
        case ErrorCode::UnsupportedArchitecture: return "UNSUPPORTED_ARCHITECTURE";
        case ErrorCode::UnsupportedTensorType: return "UNSUPPORTED_TENSOR_TYPE";
        case ErrorCode::MissingTensor: return "MISSING_TENSOR";
        case ErrorCode::TensorShape: return "TENSOR_SHAPE";
        case ErrorCode::InsufficientVram: return "INSUFFICIENT_VRAM";
        case ErrorCode::DeviceAlloc: return "DEVICE_ALLOC";
        case ErrorCode::Transfer: return "TRANSFER";
        case ErrorCode::Cancelled: return "CANCELLED";
        case ErrorCode::NoDevice: return "NO_DEVICE";
        case ErrorCode::Device: return "DEVICE";
        case ErrorCode::Tokenizer: return "TOKENIZER";
        case ErrorCode::ChatTemplate: return "CHAT_TEMPLATE";
        case ErrorCode::ContextOverflow: return "CONTEXT_OVERFLOW";
        case ErrorCode::Io: return "IO";
        case ErrorCode::Residency: return "RESIDENCY";
        case ErrorCode::Verify: return "VERIFY";
        case ErrorCode::Internal: return "INTERNAL";
    }
    return "UNKNOWN";
}

}  // namespace orcd
