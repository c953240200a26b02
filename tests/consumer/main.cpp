// Links against lockstep and checks one deterministic product end to end.
#include <cstdio>

#include "core/tensor.h"

int main() {
  using namespace lockstep;
  Tensor a = Tensor::from_vector({1.f, 2.f, 3.f, 4.f}, {2, 2});
  Tensor b = Tensor::from_vector({5.f, 6.f, 7.f, 8.f}, {2, 2});
  Tensor c = matmul(a, b);
  const float* p = c.data<float>();
  bool ok = p[0] == 19.f && p[1] == 22.f && p[2] == 43.f && p[3] == 50.f;
  std::printf("consumer: %s\n", ok ? "ok" : "wrong result");
  return ok ? 0 : 1;
}
