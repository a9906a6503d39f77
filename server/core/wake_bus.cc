#include "server/core/wake_bus.h"

#include "schemas/json_io.h"


namespace meshwire {

const std::string& CommittedMessage::Json() const {
  std::call_once(json_once_, [this] { json_ = MessageJsonText(message_); });
  return json_;
}

std::shared_ptr<const std::string> CommittedMessage::PollAnswer() const {
  std::call_once(answer_once_, [this] {
    answer_ = std::make_shared<const std::string>("{\"messages\":[" + Json() + "],\"cursor\":" +
                                                  std::to_string(message_.seq) + "}");
  });
  return answer_;
}

void LocalWakeBus::Publish(const WakeEvent& event) {
  std::vector<std::shared_ptr<const Subscriber>> subscribers;
  {
    std::lock_guard lock(mu_);
    subscribers = subscribers_;
  }
  for (const auto& s : subscribers) (*s)(event);
}

void LocalWakeBus::Subscribe(Subscriber subscriber, Interest /*interest*/) {
  std::lock_guard lock(mu_);
  subscribers_.push_back(std::make_shared<const Subscriber>(std::move(subscriber)));
}

}  // namespace meshwire
