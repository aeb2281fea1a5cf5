// Conversions between an aggregate's event variant and protobuf messages, by message type.
#pragma once

#include <google/protobuf/any.pb.h>
#include <google/protobuf/message.h>

#include <optional>
#include <variant>

namespace crm {

// The alternative of `Variant` whose message type is packed in `any`; nullopt if none is.
template <typename Variant, size_t I = 0>
std::optional<Variant> unpack_variant(const google::protobuf::Any& any) {
  if constexpr (I == std::variant_size_v<Variant>) {
    return std::nullopt;
  } else {
    using Alternative = std::variant_alternative_t<I, Variant>;
    if (any.Is<Alternative>()) {
      Alternative message;
      if (!any.UnpackTo(&message)) return std::nullopt;
      return Variant(std::move(message));
    }
    return unpack_variant<Variant, I + 1>(any);
  }
}

// The alternative of `Variant` whose message type `message` has; nullopt if none.
template <typename Variant, size_t I = 0>
std::optional<Variant> to_variant(const google::protobuf::Message& message) {
  if constexpr (I == std::variant_size_v<Variant>) {
    return std::nullopt;
  } else {
    using Alternative = std::variant_alternative_t<I, Variant>;
    if (message.GetDescriptor() == Alternative::descriptor())
      return Variant(static_cast<const Alternative&>(message));
    return to_variant<Variant, I + 1>(message);
  }
}

}  // namespace crm
