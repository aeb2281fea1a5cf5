// The usual visitor of a std::variant from lambdas: std::visit(Overloaded{[](A&){}, ...}, v).
#pragma once

namespace crm {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

}  // namespace crm
