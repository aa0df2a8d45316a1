// embed MODEL IMAGE: the most likely class of IMAGE and its probability, e.g. "goldfish 0.8312".
// MODEL is a converted folder carrying its preprocessing and labels (octet-convert --preset ... --labels ...).
#include <octet/image.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: embed MODEL IMAGE\n");
    return 2;
  }
  try {
    auto model = octet::Model::load(argv[1]);
    octet::Session session(model, {/*batch*/ 1, /*threads*/ 1});
    octet::load_image_into(*model, argv[2], session.input(0), 0);
    session.run();

    const octet::Tensor logits = session.output(0);
    const float* begin = logits.data;
    const float* end = begin + logits.elements();
    const float* best = std::max_element(begin, end);
    double sum = 0;  // softmax denominator, shifted by the largest logit so exp cannot overflow
    for (const float* l = begin; l != end; ++l) sum += std::exp(double(*l) - *best);

    const size_t index = size_t(best - begin);
    const std::vector<std::string>& labels = model->labels();
    const std::string label = index < labels.size() ? labels[index] : "class " + std::to_string(index);
    std::printf("%s %.4f\n", label.c_str(), 1.0 / sum);
  } catch (const std::exception& e) {  // octet::Error, and anything else (std::bad_alloc): a message, never a signal
    std::fprintf(stderr, "embed: %s\n", e.what());
    return 1;
  }
  return 0;
}
